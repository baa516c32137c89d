/**
 * Secret flags of a few well-known programs, for {@linkcode redactArgv}
 * (shared/argv_redact.ts). The generic patterns there recognise a secret by
 * its flag's *name* (`--password`, `--client-secret`); these programs take
 * one behind a one-letter flag (`mysql -phunter2`, `sshpass -p hunter2`,
 * `curl -u admin:hunter2`) that means something harmless elsewhere (`-p` is a
 * port to `docker run`), so they apply only when the program matches.
 *
 * The program is argv[0]'s basename, or the first word after a wrapper
 * (`sudo -u root mysql …`, `env A=1 mysql …`). Deliberately simple: a shell
 * command line (`sh -c "mysql -p…"`) is one argument and not parsed.
 *
 * Everything here is plain string work on already capped arguments (no
 * pattern), so it stays linear on hostile input.
 */

/** How one program takes secrets on its command line. */
export interface ProgramRule {
  /** Flags whose attached value is a secret: `-phunter2` (short flags only). */
  readonly attached?: readonly string[];
  /** Flags whose next argument is a secret, whatever it looks like: `-p -Xy7!`. */
  readonly next?: readonly string[];
  /** Flags whose value is `user:password`: the user stays readable (`-u admin:[REDACTED]`). */
  readonly userinfo?: readonly string[];
  /** The rule applies only after this word: `docker login -p x`, not `docker run -p 80:80`. */
  readonly after?: string;
}

const MYSQL: ProgramRule = { attached: ["-p"] };
// `-p` alone makes mysql prompt; the next argument is then the database, not a secret.
const REGISTRY_LOGIN: ProgramRule = {
  attached: ["-p"],
  next: ["-p", "--password"],
  after: "login",
};

/** Program basename → how it takes secrets. psql has no password flag (PGPASSWORD=… is caught by name). */
export const PROGRAM_RULES: Readonly<Record<string, ProgramRule>> = Object.freeze({
  mysql: MYSQL,
  mariadb: MYSQL,
  mysqldump: MYSQL,
  mysqladmin: MYSQL,
  mysqlimport: MYSQL,
  mysqlcheck: MYSQL,
  mysqlshow: MYSQL,
  "mariadb-dump": MYSQL,
  "mariadb-admin": MYSQL,
  sshpass: { attached: ["-p"], next: ["-p"] },
  "redis-cli": { attached: ["-a"], next: ["-a", "--pass"] },
  mongosh: { next: ["-p", "--password"] },
  mongo: { next: ["-p", "--password"] },
  sqlcmd: { attached: ["-P"], next: ["-P"] },
  "valkey-cli": { attached: ["-a"], next: ["-a", "--pass"] },
  docker: REGISTRY_LOGIN,
  podman: REGISTRY_LOGIN,
  nerdctl: REGISTRY_LOGIN,
  buildah: REGISTRY_LOGIN,
  skopeo: REGISTRY_LOGIN,
  helm: REGISTRY_LOGIN,
  oras: REGISTRY_LOGIN,
  curl: { userinfo: ["-u", "--user", "-U", "--proxy-user"], next: ["--oauth2-bearer"] },
});

/** Wrappers that run the next word as the program, with their options that take a value. */
const WRAPPERS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  sudo: ["-u", "-g", "-h", "-p", "-C", "-D", "-R", "-r", "-t", "-T", "-U"],
  doas: ["-u", "-C"],
  env: ["-u", "-C", "-S", "--unset", "--chdir"],
  nice: ["-n"],
  nohup: [],
  time: ["-f", "-o"],
  timeout: ["-s", "-k", "--signal", "--kill-after"],
  stdbuf: ["-i", "-o", "-e"],
  ionice: ["-c", "-n", "-p", "-P", "-u"],
  command: [],
  exec: ["-a"],
  xargs: ["-a", "-d", "-E", "-I", "-L", "-n", "-P", "-s"],
});

/** Wrappers that take one positional word before the program: `timeout 60 mysql …`. */
const WRAPPER_POSITIONALS: Readonly<Record<string, number>> = Object.freeze({ timeout: 1 });

/** Only this far into the argv is a program looked for (wrappers are short). */
const SCAN_ARGS = 24;
/** An environment assignment `env` skips: `NAME=value`. */
const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=/;

/** The program an argv runs and where its name is. */
export interface FoundProgram {
  readonly rule: ProgramRule;
  readonly index: number;
}

function basename(word: string): string {
  return word.slice(word.lastIndexOf("/") + 1);
}

/** The known program `argv` runs (argv[0], or the first word after `sudo`/`env`/…), if any. */
export function findProgram(argv: readonly unknown[]): FoundProgram | undefined {
  const end = Math.min(argv.length, SCAN_ARGS);
  let i = 0;
  while (i < end) {
    const word = argv[i];
    if (typeof word !== "string" || word.length > 256) return undefined;
    const name = basename(word);
    const rule = Object.hasOwn(PROGRAM_RULES, name) ? PROGRAM_RULES[name] : undefined;
    if (rule) return { rule, index: i };
    const valueFlags = Object.hasOwn(WRAPPERS, name) ? WRAPPERS[name] : undefined;
    if (!valueFlags) return undefined;
    for (i++; i < end; i++) {
      const a = argv[i];
      if (typeof a !== "string") return undefined;
      if (a === "--") {
        i++;
        break;
      }
      if (a.startsWith("-") && a.length > 1) {
        if (valueFlags.includes(a)) i++;
        continue;
      }
      if (name === "env" && ASSIGNMENT.test(a)) continue;
      i += WRAPPER_POSITIONALS[name] ?? 0;
      break;
    }
  }
  return undefined;
}

/** What a rule makes of one argument after the program's name. */
export type ProgramHit =
  | { readonly kind: "shown"; readonly arg: string }
  | { readonly kind: "next"; readonly value: "secret" | "userinfo" }
  | undefined;

/**
 * `user:password` → `user:<redacted>`; undefined when there is no password
 * (`-u admin` makes curl prompt for it).
 */
export function redactUserinfo(value: string, redacted: string): string | undefined {
  const colon = value.indexOf(":");
  if (colon < 0 || colon === value.length - 1) return undefined;
  return `${value.slice(0, colon + 1)}${redacted}`;
}

/** Short flags combined, the last one taking the next argument: `curl -su admin:…`. */
const SHORT_CLUSTER = /^-[A-Za-z]{2,8}$/;

function endsCluster(flags: readonly string[] | undefined, arg: string): boolean {
  if (flags === undefined || !SHORT_CLUSTER.test(arg)) return false;
  return flags.some((f) => f.length === 2 && f !== "--" && arg.endsWith(f[1]!));
}

/**
 * A value attached to a flag inside a group of short flags: `curl -sSuadmin:…`,
 * `mysql -Bphunter2`. Short options take the rest of the word as their value,
 * so everything after the first secret letter is the value (when the letters
 * before it are flags that take none: a false positive only hides more).
 */
function clusterHit(rule: ProgramRule, arg: string, redacted: string): ProgramHit {
  if (arg.length < 4 || arg[0] !== "-" || arg[1] === "-") return undefined;
  for (let k = 2; k < Math.min(arg.length - 1, 10); k++) {
    const c = arg[k]!;
    if (!/[A-Za-z]/.test(arg[k - 1]!)) return undefined;
    const flag = `-${c}`;
    if (rule.userinfo?.includes(flag)) {
      const shown = redactUserinfo(arg.slice(k + 1), redacted);
      if (shown !== undefined) return { kind: "shown", arg: `${arg.slice(0, k + 1)}${shown}` };
    }
    if (rule.attached?.includes(flag)) {
      return { kind: "shown", arg: `${arg.slice(0, k + 1)}${redacted}` };
    }
  }
  return undefined;
}

/** Applies `rule` to one argument (a flag, or a flag with its value attached). */
export function programHit(rule: ProgramRule, arg: string, redacted: string): ProgramHit {
  return directHit(rule, arg, redacted) ?? clusterHit(rule, arg, redacted);
}

function directHit(rule: ProgramRule, arg: string, redacted: string): ProgramHit {
  if (rule.next?.includes(arg) || endsCluster(rule.next, arg)) {
    return { kind: "next", value: "secret" };
  }
  if (rule.userinfo?.includes(arg) || endsCluster(rule.userinfo, arg)) {
    return { kind: "next", value: "userinfo" };
  }
  if (arg.startsWith("--")) {
    for (const flag of rule.userinfo ?? []) {
      if (!flag.startsWith("--") || !arg.startsWith(`${flag}=`)) continue;
      const shown = redactUserinfo(arg.slice(flag.length + 1), redacted);
      if (shown !== undefined) return { kind: "shown", arg: `${flag}=${shown}` };
    }
    return undefined;
  }
  for (const flag of rule.userinfo ?? []) {
    if (flag.startsWith("--") || !arg.startsWith(flag) || arg.length === flag.length) continue;
    const shown = redactUserinfo(arg.slice(flag.length), redacted);
    if (shown !== undefined) return { kind: "shown", arg: `${flag}${shown}` };
  }
  for (const flag of rule.attached ?? []) {
    if (arg.startsWith(flag) && arg.length > flag.length) {
      return { kind: "shown", arg: `${flag}${redacted}` };
    }
  }
  return undefined;
}
