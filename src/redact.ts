/**
 * Keeping the database password out of every line the job prints. A password may hold any
 * character, also an unencoded `@`, `/`, `#` or `?` that makes the URL unparsable, so the
 * password is taken as everything between the user's `:` and the LAST `@` of the URL, and
 * every occurrence of it (as written and percent-decoded) is masked, wherever it appears.
 */

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
  return found;
}

/** A URL (alone, as configured) with its password replaced by `***`. */
export function redactUrl(url: string): string {
  return url
    .replace(userinfoPattern, (_match, user: string) => `${url.slice(0, url.indexOf('://') + 3)}${user}:***@`)
    .replace(/([?&]password=)[^&\s]*/gi, '$1***');
}

/**
 * A function that masks the passwords of `urls` anywhere in a line, and the password part of
 * any other `scheme://user:password@` it finds there.
 */
export function createRedactor(urls: (string | undefined)[]): (line: string) => string {
  const secrets = urls.flatMap(passwordsOf).sort((a, b) => b.length - a.length);
  return (line) => {
    let out = line;
    for (const secret of secrets) out = out.split(secret).join('***');
    return out.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*):\S*@/gi, '$1:***@').replace(/([?&]password=)[^&\s]*/gi, '$1***');
  };
}
