/** Reading (never verifying) JWTs the gate sent us: only to size caches and name accounts. */

/** A JWT's claims, unverified (we only read what the gate sent us); {} when unreadable. */
export function jwtClaims(jwt: string): Record<string, unknown> {
  try {
    const part = jwt.split(".")[1] ?? "";
    const json = JSON.parse(atob(part.replaceAll("-", "+").replaceAll("_", "/")));
    return json !== null && typeof json === "object" ? json : {};
  } catch {
    return {};
  }
}

/** `exp` of a JWT in ms; 0 when it cannot be read (then it is not cached). */
export function jwtExpiry(jwt: string): number {
  const exp = jwtClaims(jwt).exp;
  return typeof exp === "number" ? exp * 1000 : 0;
}
