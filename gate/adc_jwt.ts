/**
 * The JWT-bearer assertion for a service-account key (RFC 7523), signed with
 * WebCrypto. The private key is used here and sent nowhere.
 */
import { GateError } from "../shared/errors.ts";

function b64url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}

function pemToDer(pem: string): Uint8Array<ArrayBuffer> {
  const body = pem.replace(/-----(BEGIN|END) [A-Z ]*PRIVATE KEY-----/g, "").replace(/\s+/g, "");
  const bin = atob(body);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Claims of the assertion. */
export interface AssertionClaims {
  readonly iss: string;
  readonly scope: string;
  readonly aud: string;
  readonly iat: number;
  readonly exp: number;
}

/** Signs `claims` with the PKCS#8 PEM `privateKey` (RS256). */
export async function signAssertion(
  claims: AssertionClaims,
  privateKey: string,
  keyId: string | undefined,
): Promise<string> {
  let key: CryptoKey;
  try {
    key = await crypto.subtle.importKey(
      "pkcs8",
      pemToDer(privateKey),
      { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
      false,
      ["sign"],
    );
  } catch {
    // Never echo the key or the parser's view of it.
    throw new GateError(
      "credentials_expired",
      "the service account key in the ADC file cannot be read as a PKCS#8 RSA key; download a new key",
    );
  }
  const enc = new TextEncoder();
  const header = { alg: "RS256", typ: "JWT", ...(keyId ? { kid: keyId } : {}) };
  const input = `${b64url(enc.encode(JSON.stringify(header)))}.${
    b64url(enc.encode(JSON.stringify(claims)))
  }`;
  const sig = await crypto.subtle.sign("RSASSA-PKCS1-v1_5", key, enc.encode(input));
  return `${input}.${b64url(new Uint8Array(sig))}`;
}
