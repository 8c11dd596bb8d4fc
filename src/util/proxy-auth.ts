/** HTTP Basic credentials as a Proxy-Authorization value. */
export const basicAuth = (user: string, password: string): string =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** The Proxy-Authorization header a proxy URL's user and password (percent-encoded there) ask for. */
export function proxyAuthHeader(proxy: URL): Record<string, string> {
  return proxy.username
    ? {
        'proxy-authorization': basicAuth(
          decodeURIComponent(proxy.username),
          decodeURIComponent(proxy.password),
        ),
      }
    : {};
}
