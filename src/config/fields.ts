/** Schema pieces the install spec and the image config share: names, URLs, accounts, keys, packages. */
import * as z from 'zod/mini';

export const HOSTNAME_RE = /^(?=.{1,63}$)[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/;
const USER_RE = /^[a-z_][a-z0-9_-]{0,31}$/;
export const TIMEZONE_RE = /^[A-Za-z0-9_+-]+(\/[A-Za-z0-9_+-]+)*$/;
export const LOCALE_RE = /^[A-Za-z]{1,3}(_[A-Za-z]{2})?\.(UTF-8|utf8)(@[a-z]+)?$|^C\.UTF-8$|^C$|^POSIX$/;
const HASH_RE = /^\$(1|5|6|y|2[aby]|7|gy)\$[^:\s]+$/;
const KEY_RE =
  /^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/=]+( .*)?$/;
/** A package name, or Gentoo's category/name (spec.ts keeps the category to Gentoo). */
const PACKAGE_RE = /^(?:[a-z0-9][a-z0-9+_-]*\/)?[a-z0-9][a-z0-9+.-]+$/;
const URL_RE = /^(https?|file):\/\/\S+$/;

/** A string checked by a pattern, with the message a user reads when it does not match. */
export const matching = (re: RegExp, message: (value: string) => string) =>
  z.string().check(z.regex(re, { error: (issue) => message(String(issue.input)) }));

/** A string checked by one of vmstub's parsers: its one-line message becomes the field's. */
export const parsedBy = (parse: (value: string) => unknown) =>
  z.string().check((ctx) => {
    try {
      parse(ctx.value);
    } catch (e) {
      ctx.issues.push({ code: 'custom', message: (e as Error).message, input: ctx.value });
    }
  });

/** An http(s) or file URL, kept without trailing slashes. */
export const url = () =>
  z.pipe(
    parsedBy((v) => {
      if (!URL_RE.test(v)) throw new Error(`'${v}' is not an http(s) or file URL`);
      try {
        new URL(v);
      } catch {
        throw new Error(`'${v}' is not a valid URL`);
      }
    }),
    z.transform((v: string) => v.replace(/\/+$/, '')),
  );

export const passwordHash = () =>
  matching(
    HASH_RE,
    () => 'must be a crypt(3) hash such as $6$..., $y$... (mkpasswd makes one); plain passwords are refused',
  );

export const sshKey = () =>
  z.string().check(
    z.trim(),
    z.regex(KEY_RE, {
      error: (issue) => `is not an SSH public key ("${String(issue.input).trim().slice(0, 30)}...")`,
    }),
  );

/** The login shell of a user whose entry names none. */
export const DEFAULT_SHELL = '/bin/bash';

export const user = z.strictObject({
  name: matching(USER_RE, (v) => `'${v}' is not a valid user name`),
  sshKeys: z.optional(z.array(sshKey())),
  sudo: z.optional(z.boolean()),
  passwordHash: z.optional(passwordHash()),
  groups: z.optional(z.array(matching(USER_RE, (v) => `'${v}' is not a valid group name`))),
  shell: z.optional(matching(/^\/[^\s:]+$/, (v) => `'${v}' is not an absolute path to a shell`)),
});

export const packageName = () => matching(PACKAGE_RE, (v) => `'${v}' is not a package name`);

export const hostname = () => matching(HOSTNAME_RE, (v) => `'${v}' is not a valid host name`);

/** An absolute path inside the new system, without `..` (it cannot point outside the root). */
const systemPath = () =>
  z.string().check((ctx) => {
    const v = ctx.value;
    if (!v.startsWith('/') || v.endsWith('/') || v.split('/').includes('..') || v.includes('\0'))
      ctx.issues.push({
        code: 'custom',
        message: `'${v}' is not an absolute file path (without ..)`,
        input: v,
      });
  });

/** A file written into the new system (a spec's files, cloud-init's write_files). */
export const writtenFile = z.strictObject({
  path: systemPath(),
  content: z.string(),
  encoding: z.optional(z.enum(['text', 'base64'])),
  mode: z.optional(matching(/^0?[0-7]{3,4}$/, (v) => `'${v}' is not an octal mode like '0644'`)),
  owner: z.optional(
    matching(/^[a-z_][a-z0-9_-]{0,31}(:[a-z_][a-z0-9_-]{0,31})?$/, (v) => `'${v}' is not USER or USER:GROUP`),
  ),
  append: z.optional(z.boolean()),
});
