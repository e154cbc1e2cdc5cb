/**
 * Keeping passwords out of what the job prints, without rewriting anything else. A password is
 * masked where it can appear, and only there:
 *
 * - in a URL's user-info (`scheme://user:password@`) and in `password=` parameters, wherever
 *   such a URL or parameter appears in a log line (`maskCredentials`);
 * - in the text of a driver or connection error, as a whole word (`maskPasswords`).
 *
 * Everything else (dates, counts, ids) is printed as it is, whatever the password: a password
 * `0` or `2019` must not turn `failed=0` or `since=2019-08-18` into something else, which would
 * break what parses the log and reveal the password to whoever reads it.
 */

// The password is everything between the user's `:` and the LAST `@` of the URL: a password may
// hold an unencoded `@` (the WHATWG parser and libpq also split at the last `@`).
const userinfoPattern = /^[a-z][a-z0-9+.-]*:\/\/([^:/@\s]*):(.*)@/is;

/** The password written in a database URL, and its percent-decoded form, if any. */
export function passwordsOf(url: string | undefined): string[] {
  if (!url) return [];
  const found: string[] = [];
  const written = userinfoPattern.exec(url.trim())?.[2];
  if (written) found.push(written);
  const query = /[?&]password=([^&\s]*)/i.exec(url)?.[1];
  if (query) found.push(query);
  for (const value of [...found]) {
    try {
      const decoded = decodeURIComponent(value);
      if (decoded !== value && decoded !== '') found.push(decoded);
    } catch {
      // Not valid percent-encoding: the written form is all there is.
    }
  }
  return [...new Set(found)];
}

/** A URL (alone, as configured) with its password replaced by `***`. */
export function redactUrl(url: string): string {
  return url
    .replace(userinfoPattern, (_match, user: string) => `${url.slice(0, url.indexOf('://') + 3)}${user}:***@`)
    .replace(/([?&]password=)[^&\s]*/gi, '$1***');
}

/**
 * Masks the password of every `scheme://user:password@` URL and every `password=` parameter
 * (URL query or `key=value` connection string) in a text, and nothing else.
 */
export function maskCredentials(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*):\S*@/gi, '$1:***@').replace(/(\bpassword=)('(?:[^'\\]|\\.)*'|[^&\s]*)/gi, '$1***');
}

// What may stand on either side of a password for it to count as a whole word: the start or end
// of the text, white space, quotes, brackets, and the delimiters around it in a URL.
const boundary = String.raw`\s"'()[\]<>,;:@/`;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/**
 * Masks `passwords` in the text of a driver or connection error: each where it stands as a
 * whole word (`127.0.0.1` keeps its `0`s with the password `0`), then the credentials of any URL.
 * The driver never prints the password it was given (the tests check it); this is the guard
 * against a message that quotes what it was configured with.
 */
export function maskPasswords(text: string, passwords: readonly string[]): string {
  let out = text;
  for (const password of [...passwords].sort((a, b) => b.length - a.length)) {
    if (password === '') continue;
    const word = new RegExp(`(^|[${boundary}])${escapeRegExp(password)}(?=$|[${boundary}])`, 'g');
    // A loop, not one replace: in `0:0` the second 0 shares its boundary with the first.
    for (let previous = ''; previous !== out;) {
      previous = out;
      out = out.replace(word, '$1***');
    }
  }
  return maskCredentials(out);
}
