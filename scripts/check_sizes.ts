// deno-lint-ignore-file no-console -- a check script reports on stdout/stderr
/**
 * Size rules (docs: /work/shared/STYLE.md "small files"), measured with the
 * TypeScript parser so that a function is what the compiler says it is:
 * - a non-test source file under the role and tool folders has at most
 *   {@linkcode MAX_FILE_LINES} lines;
 * - a function (declaration, expression, arrow, method, accessor,
 *   constructor) spans at most {@linkcode MAX_FUNCTION_LINES} lines, from its
 *   first token (leading comments excluded) to its closing brace. A nested
 *   function counts inside its parent too: a 300-line closure is one long
 *   function, however it is carved inside.
 * Test files (`*_test.ts`) are exempt. Data tables are not functions and so
 * are not limited (CONFIG_SCHEMA is an object literal).
 *
 *   deno run -A scripts/check_sizes.ts          # exits 1 on a breach
 *   deno run -A scripts/check_sizes.ts --top 5  # also lists the 5 largest of each
 */
import ts from "typescript";

/** The folders whose sources are measured. */
export const SIZE_FOLDERS: readonly string[] = [
  "gate",
  "proxy",
  "wrap",
  "kube",
  "shared",
  "scripts",
  "bench",
];
export const MAX_FILE_LINES = 400;
export const MAX_FUNCTION_LINES = 80;

/**
 * Breaches that predate this check, each with the size it may not exceed
 * (a ratchet: they may shrink, never grow, and a new one fails). Split one,
 * then delete its line here. Keys are `path name` (functions) or `path`.
 */
export const KNOWN_OVER: Readonly<Record<string, number>> = {};

/** One measured file or function. */
export interface Measure {
  readonly where: string;
  readonly lines: number;
}

/** What {@linkcode measureSource} finds in one file. */
export interface FileMeasures {
  readonly lines: number;
  readonly functions: readonly Measure[];
}

function functionName(node: ts.Node, sf: ts.SourceFile): string {
  const named = node as ts.Node & { name?: ts.Node };
  if (named.name) return named.name.getText(sf);
  if (ts.isConstructorDeclaration(node)) return "constructor";
  const parent = node.parent;
  if (parent && ts.isVariableDeclaration(parent)) return parent.name.getText(sf);
  if (parent && ts.isPropertyAssignment(parent)) return parent.name.getText(sf);
  return "(anonymous)";
}

/** Lines of a file and of each function in it (`path` names them in the output). */
export function measureSource(path: string, text: string): FileMeasures {
  const sf = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const functions: Measure[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && "body" in node && node.body !== undefined) {
      const first = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const last = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
      functions.push({
        where: `${path}:${first + 1} ${functionName(node, sf)}`,
        lines: last - first + 1,
      });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  const lines = text.endsWith("\n") ? text.split("\n").length - 1 : text.split("\n").length;
  return { lines, functions };
}

/** `gate/x.ts:12 name` → `gate/x.ts name` (line numbers move; names stay). */
function keyOf(where: string): string {
  return where.replace(/:\d+ /, " ");
}

function* sources(root: string, dir: string): Generator<string> {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(`${root}${dir}`)];
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return;
    throw err;
  }
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory) yield* sources(root, rel);
    else if (e.isFile && e.name.endsWith(".ts") && !e.name.endsWith("_test.ts")) yield rel;
  }
}

function main(): number {
  const root = new URL("..", import.meta.url).pathname;
  const topIdx = Deno.args.indexOf("--top");
  const top = topIdx >= 0 ? Number(Deno.args[topIdx + 1] ?? "10") : 0;
  const files: Measure[] = [];
  const functions: Measure[] = [];
  for (const dir of SIZE_FOLDERS) {
    for (const rel of sources(root, dir)) {
      const m = measureSource(rel, Deno.readTextFileSync(`${root}${rel}`));
      files.push({ where: rel, lines: m.lines });
      functions.push(...m.functions);
    }
  }
  const byLines = (a: Measure, b: Measure): number => b.lines - a.lines;
  files.sort(byLines);
  functions.sort(byLines);
  const known: Measure[] = [];
  const breach = (f: Measure, max: number): boolean => {
    if (f.lines <= max) return false;
    const allowed = KNOWN_OVER[keyOf(f.where)];
    if (allowed === undefined || f.lines > allowed) return true;
    known.push(f);
    return false;
  };
  const bigFiles = files.filter((f) => breach(f, MAX_FILE_LINES));
  const longFunctions = functions.filter((f) => breach(f, MAX_FUNCTION_LINES));
  for (const f of known) console.log(`known, to split: ${f.where}: ${f.lines} lines`);
  // A split breach must leave the list, or it could quietly grow back.
  const stale = Object.keys(KNOWN_OVER).filter((k) => !known.some((f) => keyOf(f.where) === k));
  for (const k of stale) {
    console.error(`KNOWN_OVER lists "${k}", now within its limit: delete its line`);
  }
  for (const f of bigFiles) {
    console.error(`file ${f.where}: ${f.lines} lines (max ${MAX_FILE_LINES})`);
  }
  for (const f of longFunctions) {
    console.error(`function ${f.where}: ${f.lines} lines (max ${MAX_FUNCTION_LINES})`);
  }
  if (top > 0) {
    console.log(`largest files:`);
    for (const f of files.slice(0, top)) console.log(`  ${String(f.lines).padStart(4)} ${f.where}`);
    console.log(`longest functions:`);
    for (const f of functions.slice(0, top)) {
      console.log(`  ${String(f.lines).padStart(4)} ${f.where}`);
    }
  }
  const ok = bigFiles.length === 0 && longFunctions.length === 0 && stale.length === 0;
  console.log(
    `sizes: ${files.length} files (largest ${
      files[0]?.lines ?? 0
    } lines, max ${MAX_FILE_LINES}), ` +
      `${functions.length} functions (longest ${
        functions[0]?.lines ?? 0
      } lines, max ${MAX_FUNCTION_LINES}): ` +
      (ok ? "rules hold" : `${bigFiles.length + longFunctions.length} over`) +
      (known.length > 0 ? ` (${known.length} known breaches, see KNOWN_OVER)` : ""),
  );
  return ok ? 0 : 1;
}

if (import.meta.main) Deno.exit(main());
