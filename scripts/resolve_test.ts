import assert from "node:assert/strict";
import { expandTemplate, placeholders, resolveFlags } from "./resolve.ts";
import { templatesFor } from "./build.ts";
import { loadInvocation } from "../shared/config.ts";
import { GateError } from "../shared/errors.ts";
import { GATE_CLI } from "../gate/cli.ts";

Deno.test("expandTemplate() fills placeholders and drops a flag left without scopes", () => {
  const values = { socket_path: ["/run/g.sock"], none: [] as string[], hosts: ["a:443", "b:443"] };
  assert.equal(
    expandTemplate("--allow-net=unix:{socket_path},{hosts},gate:1", values),
    "--allow-net=unix:/run/g.sock,a:443,b:443,gate:1",
  );
  // An empty --allow-read= would mean "everything": the flag must disappear.
  assert.equal(expandTemplate("--allow-read={none}", values), undefined);
  assert.equal(expandTemplate("--allow-all", values), "--allow-all");
});

Deno.test("expandTemplate() refuses values that would split a grant or add a flag line", () => {
  for (const bad of ["/tmp/a,/etc", "/tmp/x\n--allow-all", "/tmp/x\r", "/tmp/\u0000x"]) {
    assert.throws(
      () => expandTemplate("--allow-read={p}", { p: [bad] }),
      (err: unknown) => err instanceof GateError && err.code === "config",
      JSON.stringify(bad),
    );
  }
});

/** A gate config in a temp dir with distinct hosts for the inspection APIs. */
function inspectConfig(adc: unknown): { dir: string; config: string } {
  const dir = Deno.makeTempDirSync({ prefix: "gcp-gate-resolve-" });
  Deno.writeTextFileSync(`${dir}/adc.json`, JSON.stringify(adc));
  Deno.writeTextFileSync(
    `${dir}/gate.toml`,
    [
      `socket_path = "${dir}/run/gate.sock"`,
      `credentials_file = "${dir}/adc.json"`,
      "[endpoints]",
      `oauth2 = "http://127.0.0.1:1001"`,
      `iamcredentials = "http://127.0.0.1:1001"`,
      `cloudresourcemanager = "http://127.0.0.1:1002"`,
      `sts = "http://127.0.0.1:1001"`,
      `iam = "http://127.0.0.1:2001"`,
      `storage = "http://127.0.0.1:2002"`,
      `pubsub = "http://127.0.0.1:2003"`,
      `bigquery = "http://127.0.0.1:2004"`,
    ].join("\n"),
  );
  return { dir, config: `${dir}/gate.toml` };
}

function netScopes(args: string[], config: string): string[] {
  const flag = resolveFlags("gcp-gate", templatesFor("gcp-gate"), ["--config", config, ...args])
    .find((f) => f.startsWith("--allow-net="))!;
  return flag.slice("--allow-net=".length).split(",").filter((s) => !s.startsWith("unix:"));
}

Deno.test("resolveFlags(): inspection API hosts go to accounts and can only, one API per resource", () => {
  const { dir, config } = inspectConfig({ type: "authorized_user" });
  try {
    const core = ["127.0.0.1:1001", "127.0.0.1:1002"];
    assert.deepEqual(netScopes([], config), core, "the daemon reaches none of them");
    assert.deepEqual(netScopes(["pending"], config), core);
    assert.deepEqual(netScopes(["accounts"], config), [...core, "127.0.0.1:2001"]);
    const can = (resource: string) => netScopes(["can", "a.b.c", "--resource", resource], config);
    assert.deepEqual(can("//storage.googleapis.com/projects/_/buckets/b"), [
      ...core,
      "127.0.0.1:2002",
    ]);
    assert.deepEqual(can("//pubsub.googleapis.com/projects/p/topics/t"), [
      ...core,
      "127.0.0.1:2003",
    ]);
    assert.deepEqual(
      can("//bigquery.googleapis.com/projects/p/datasets/d/tables/t"),
      [...core, "127.0.0.1:2004"],
    );
    assert.deepEqual(can("//iam.googleapis.com/projects/p/serviceAccounts/a@b.c"), [
      ...core,
      "127.0.0.1:2001",
    ]);
    assert.deepEqual(can("//cloudresourcemanager.googleapis.com/projects/p"), core);
    assert.deepEqual(can("//compute.googleapis.com/projects/p"), core, "unsupported: nothing more");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("resolveFlags(): an executable credential source is runnable only with Google's opt-in", () => {
  const { dir, config } = inspectConfig({
    type: "external_account",
    audience: "a",
    subject_token_type: "urn:ietf:params:oauth:token-type:jwt",
    credential_source: {
      executable: { command: "/opt/spire/fetch-jwt --audience x", output_file: "/tmp/out.json" },
    },
  });
  const had = Deno.env.get("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES");
  const runFlag = (): string | undefined =>
    resolveFlags("gcp-gate", templatesFor("gcp-gate"), ["--config", config])
      .find((f) => f.startsWith("--allow-run="));
  try {
    Deno.env.delete("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES");
    assert.ok(!runFlag()?.includes("/opt/spire/fetch-jwt"), "no opt-in, no grant");
    Deno.env.set("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES", "1");
    const scopes = runFlag()!.slice("--allow-run=".length).split(",");
    assert.ok(scopes.includes("/opt/spire/fetch-jwt"), scopes.join(","));
    assert.ok(!scopes.some((s) => s.includes("--audience")), "the program, not its arguments");
    const read = resolveFlags("gcp-gate", templatesFor("gcp-gate"), ["--config", config])
      .find((f) => f.startsWith("--allow-read="))!;
    assert.ok(read.split(/[=,]/).includes("/tmp/out.json"), "the cached output file is readable");
  } finally {
    if (had === undefined) Deno.env.delete("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES");
    else Deno.env.set("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES", had);
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("placeholders() lets the gate reach the PAM endpoint only with a pam_entitlement", () => {
  const inv = (args: string[]) =>
    loadInvocation(GATE_CLI, args, {
      env: (n) => (n === "HOME" ? "/nonexistent-home" : undefined),
      readTextFile: () => undefined,
      cwd: () => "/",
    });
  const PAM = "privilegedaccessmanager.googleapis.com:443";
  assert.ok(!placeholders("gcp-gate", inv([])).endpoint_hosts?.includes(PAM), "no PAM: no host");
  const entitled = ["--pam-entitlement", "projects/p/locations/global/entitlements/e"];
  assert.ok(placeholders("gcp-gate", inv(entitled)).endpoint_hosts?.includes(PAM));
  const custom = placeholders(
    "gcp-gate",
    inv([...entitled, "--endpoints-privilegedaccessmanager", "https://pam.psc.example:8443"]),
  );
  assert.ok(custom.endpoint_hosts?.includes("pam.psc.example:8443"));
  assert.ok(!custom.endpoint_hosts?.includes(PAM));
});

Deno.test("resolveFlags(): a gate with profiles is granted each profile's socket and directory, and no other", () => {
  const dir = Deno.makeTempDirSync({ prefix: "gcp-gate-resolve-" });
  try {
    Deno.writeTextFileSync(
      `${dir}/gate.toml`,
      [
        `socket_path = "${dir}/top/gate.sock"`,
        `admin_socket_path = "${dir}/admin/admin.sock"`,
        `[profiles.web]`,
        `socket_path = "${dir}/web/gate.sock"`,
        `[profiles.api]`,
        `socket_path = "${dir}/api/gate.sock"`,
      ].join("\n"),
    );
    const flags = resolveFlags("gcp-gate", templatesFor("gcp-gate"), [
      "--config",
      `${dir}/gate.toml`,
    ]);
    const scopes = (flag: string): string[] =>
      flags.find((f) => f.startsWith(`${flag}=`))!.slice(flag.length + 1).split(",");
    const net = scopes("--allow-net").filter((s) => s.startsWith("unix:"));
    assert.deepEqual(net, [
      `unix:${dir}/web/gate.sock`,
      `unix:${dir}/api/gate.sock`,
      `unix:${dir}/admin/admin.sock`,
    ]);
    const write = scopes("--allow-write");
    assert.ok(write.includes(`${dir}/web`) && write.includes(`${dir}/api`));
    assert.ok(
      !write.includes(`${dir}/top`),
      "the unused top-level socket directory is not granted",
    );
    assert.ok(!scopes("--allow-read").includes(`${dir}/top`));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
