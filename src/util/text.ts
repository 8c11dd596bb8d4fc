/** The bytes as text when they are UTF-8 exactly (decoding them back gives the same bytes), else undefined. */
export function utf8Text(bytes: Buffer): string | undefined {
  const text = bytes.toString('utf8');
  return Buffer.from(text, 'utf8').equals(bytes) ? text : undefined;
}
