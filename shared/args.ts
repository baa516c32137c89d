/**
 * A strict command-line flag parser for the options every role uses:
 * `--name value`, `--name=value`, `-x value`, booleans, repeatable flags, and
 * `--` ending the options.
 *
 * Why not `node:util`'s parseArgs: calling it boots Deno's Node compatibility
 * layer, measured at ~16 ms per process start here (a hello world is ~21 ms).
 * A launch with a resolve step pays it twice, and gcp-kube-token-style hot
 * paths cannot afford it. Semantics follow parseArgs' strict mode.
 */
import { GateError } from "./errors.ts";

/** One flag's shape. */
export interface FlagSpec {
  readonly type: "string" | "boolean";
  readonly short?: string;
  readonly multiple?: boolean;
}

/** Options for {@linkcode parseFlags}. */
export interface ParseFlagsOptions {
  readonly options: Readonly<Record<string, FlagSpec>>;
  readonly allowPositionals?: boolean;
}

export type FlagValue = string | boolean | string[];

export interface ParsedFlags {
  readonly values: Readonly<Record<string, FlagValue>>;
  readonly positionals: readonly string[];
}

function usage(message: string): GateError {
  return new GateError("usage", message);
}

/** Parses `args` strictly; throws GateError `usage` with a one-line message. */
export function parseFlags(args: readonly string[], opts: ParseFlagsOptions): ParsedFlags {
  const values: Record<string, FlagValue> = {};
  const positionals: string[] = [];
  const byShort = new Map<string, string>();
  for (const [name, spec] of Object.entries(opts.options)) {
    if (spec.short) byShort.set(spec.short, name);
  }

  const set = (name: string, spec: FlagSpec, value: string | true): void => {
    if (spec.multiple) {
      const list = values[name];
      values[name] = [...(Array.isArray(list) ? list : []), String(value)];
    } else {
      values[name] = value;
    }
  };

  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      if (!opts.allowPositionals && i + 1 < args.length) {
        throw usage(`Unexpected argument '${args[i + 1]}': this command takes no arguments`);
      }
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      if (!opts.allowPositionals) {
        throw usage(`Unexpected argument '${arg}': this command takes no arguments`);
      }
      positionals.push(arg);
      continue;
    }
    const long = arg.startsWith("--");
    const eq = arg.indexOf("=");
    const rawName = long
      ? arg.slice(2, eq < 0 ? undefined : eq)
      : arg.slice(1, eq < 0 ? undefined : eq);
    const name = long ? rawName : byShort.get(rawName);
    // Own keys only: `--constructor` must not find Object.prototype's.
    const spec = name === undefined || !Object.hasOwn(opts.options, name)
      ? undefined
      : opts.options[name];
    if (name === undefined || spec === undefined || (!long && rawName.length !== 1)) {
      const shown = eq < 0 ? arg : arg.slice(0, eq);
      throw usage(`Unknown option '${shown}'`);
    }
    const display = long ? `--${name}` : `-${rawName}`;
    if (spec.type === "boolean") {
      if (eq >= 0) throw usage(`Option '${display}' does not take a value`);
      set(name, spec, true);
      continue;
    }
    if (eq >= 0) {
      set(name, spec, arg.slice(eq + 1));
      continue;
    }
    const next = args[i + 1];
    if (next === undefined) throw usage(`Option '${display} <value>' needs a value`);
    // A value that looks like a flag is more likely a forgotten value.
    if (next.startsWith("-") && next !== "-") {
      throw usage(
        `Option '${display} <value>' got '${next}'; write ${display}=${next} if that is the value`,
      );
    }
    set(name, spec, next);
    i++;
  }
  return { values, positionals };
}
