/**
 * The README and docs/ are one manual: every relative link resolves (file and
 * heading), and what they tell a reader to run exists (deno tasks, scripts,
 * source and test files named in backticks).
 */
import assert from "node:assert/strict";
import { docFiles } from "../scripts/readme.ts";
import { ROOT } from "./_utils.ts";

const DOCS = docFiles(ROOT);
const TASKS = Object.keys(
  (JSON.parse(Deno.readTextFileSync(`${ROOT}/deno.json`)) as { tasks: Record<string, string> })
    .tasks,
);

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens. */
export function headingSlug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-");
}

function anchorsOf(text: string): Set<string> {
  const slugs = new Set<string>();
  let fenced = false;
  for (const line of text.split("\n")) {
    if (line.startsWith("```")) fenced = !fenced;
    const m = /^#{1,6} (.*)$/.exec(line);
    if (!fenced && m) slugs.add(headingSlug(m[1]!));
  }
  return slugs;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function rel(path: string): string {
  return path.slice(ROOT.length + 1);
}

Deno.test("docs: headingSlug() follows GitHub's anchors", () => {
  assert.equal(headingSlug("Known limits of the model"), "known-limits-of-the-model");
  assert.equal(headingSlug("The gate (`gcp-gate`)"), "the-gate-gcp-gate");
});

Deno.test("docs: every relative link in README.md and docs/*.md resolves, headings included", () => {
  const bad: string[] = [];
  for (const doc of DOCS) {
    const text = Deno.readTextFileSync(doc);
    const dir = doc.slice(0, doc.lastIndexOf("/"));
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1]!;
      if (/^[a-z]+:/.test(target)) continue;
      const [file, anchor] = target.split("#") as [string, string | undefined];
      const path = file === "" ? doc : `${dir}/${file}`;
      if (!exists(path)) {
        bad.push(`${rel(doc)}: ${target} (no such file)`);
        continue;
      }
      if (anchor !== undefined && !anchorsOf(Deno.readTextFileSync(path)).has(anchor)) {
        bad.push(`${rel(doc)}: ${target} (no such heading)`);
      }
    }
  }
  assert.deepEqual(bad, []);
});

Deno.test("docs: every page under docs/ is reachable from the README", () => {
  const readme = Deno.readTextFileSync(`${ROOT}/README.md`);
  const linked = new Set([...readme.matchAll(/\]\(docs\/([^)#\s]+)/g)].map((m) => m[1]!));
  const unlinked = DOCS.filter((d) => d.includes("/docs/"))
    .map((d) => d.slice(d.lastIndexOf("/") + 1))
    .filter((name) => !linked.has(name));
  assert.deepEqual(unlinked, []);
});

Deno.test("docs: every `deno task X` named is a task, every repo file named exists", () => {
  const bad: string[] = [];
  for (const doc of DOCS) {
    const text = Deno.readTextFileSync(doc);
    for (const m of text.matchAll(/deno task ([a-z][a-z0-9-]*)/g)) {
      if (!TASKS.includes(m[1]!)) bad.push(`${rel(doc)}: deno task ${m[1]}`);
    }
    // `scripts/x.ts`, `tests/x_test.ts`, `gate/x.ts`, … named in backticks or commands.
    const files =
      /(?<![\w/.-])((?:scripts|tests|gate|proxy|wrap|kube|shared|bench|devcontainer)\/[\w./-]+\.(?:ts|sh|json))/g;
    for (const m of text.matchAll(files)) {
      if (!exists(`${ROOT}/${m[1]}`)) bad.push(`${rel(doc)}: ${m[1]}`);
    }
  }
  assert.deepEqual(bad, []);
});

Deno.test("docs: the README stays a short start, the reference lives in docs/", () => {
  const lines = Deno.readTextFileSync(`${ROOT}/README.md`).split("\n").length;
  assert.ok(lines <= 250, `README.md has ${lines} lines; move reference material to docs/`);
});
