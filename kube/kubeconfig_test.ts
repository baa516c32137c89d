import assert from "node:assert/strict";
import { GateError } from "../shared/errors.ts";
import {
  findExecUsers,
  GKE_PLUGIN,
  INSTALL_HINT,
  patchKubeconfig,
  revertKubeconfig,
  yamlScalar,
} from "./kubeconfig.ts";

const FIXTURES = new URL("../tests/fixtures/", import.meta.url);
const GCLOUD = Deno.readTextFileSync(new URL("kubeconfig_gcloud.yaml", FIXTURES));
const PATCHED = Deno.readTextFileSync(new URL("kubeconfig_gcloud.patched.yaml", FIXTURES));
const TOKEN = "/opt/gcp-gate/bin/gcp-kube-token";
const DEV = "gke_demo-project_us-central1_dev-cluster";
const PROD = "gke_demo-project_europe-west1-b_prod-cluster";

Deno.test("patchKubeconfig() changes only command and installHint of gke users, byte for byte", () => {
  const r = patchKubeconfig(GCLOUD, TOKEN, "config");
  assert.deepEqual(r.patched, [DEV, PROD]);
  assert.equal(r.text, PATCHED.replaceAll("@GCP_KUBE_TOKEN@", TOKEN));
  const users = findExecUsers(r.text, "config");
  assert.deepEqual(users.map((u) => u.command), [TOKEN, TOKEN]);
});

Deno.test("patchKubeconfig() is idempotent and updates a moved gcp-kube-token", () => {
  const once = patchKubeconfig(GCLOUD, TOKEN, "config").text;
  const twice = patchKubeconfig(once, TOKEN, "config");
  assert.equal(twice.text, once);
  assert.deepEqual(twice.patched, []);
  assert.deepEqual(twice.already, [DEV, PROD]);
  const moved = patchKubeconfig(once, "/new place/gcp-kube-token", "config");
  assert.deepEqual(moved.patched, [DEV, PROD]);
  assert.match(moved.text, /command: "\/new place\/gcp-kube-token"/);
});

Deno.test("revertKubeconfig() with the backup restores the original exactly", () => {
  const patched = patchKubeconfig(GCLOUD, TOKEN, "config").text;
  const r = revertKubeconfig(patched, [GCLOUD], "config");
  assert.equal(r.text, GCLOUD);
  assert.deepEqual(r.fromBackup, [DEV, PROD]);
});

Deno.test("revertKubeconfig() without a backup writes gcloud's bare command back", () => {
  const patched = patchKubeconfig(GCLOUD, TOKEN, "config").text;
  const r = revertKubeconfig(patched, [], "config");
  assert.deepEqual(r.reverted, [DEV, PROD]);
  assert.deepEqual(r.fromBackup, []);
  const users = findExecUsers(r.text, "config");
  assert.deepEqual(users.map((u) => u.command), [GKE_PLUGIN, GKE_PLUGIN]);
  assert.ok(!r.text.includes("gcp-kube-token"));
  // Everything outside the two users' exec sections is untouched.
  assert.equal(r.text.slice(0, 1700), GCLOUD.slice(0, 1700));
});

Deno.test("patch adds a missing installHint and revert removes it again", () => {
  const src = [
    "apiVersion: v1",
    "kind: Config",
    "users:",
    "- name: a",
    "  user:",
    "    exec:",
    "      apiVersion: client.authentication.k8s.io/v1",
    "      command: gke-gcloud-auth-plugin # from gcloud",
    "      provideClusterInfo: true",
    "- name: flow",
    '  user: {exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: "gke-gcloud-auth-plugin"}}',
    "",
  ].join("\n");
  const p = patchKubeconfig(src, TOKEN, "config");
  assert.deepEqual(p.patched, ["a", "flow"]);
  assert.ok(p.text.includes(`command: ${TOKEN} # from gcloud\n      installHint: "`));
  const flow = findExecUsers(p.text, "config").find((u) => u.name === "flow");
  assert.equal(flow?.command, TOKEN);
  assert.equal(revertKubeconfig(p.text, [src], "config").text, src);
});

Deno.test("patchKubeconfig() leaves users that pass args alone and says why", () => {
  const src =
    "kind: Config\nusers:\n- name: a\n  user:\n    exec:\n      args: [--verbosity=debug]\n      command: gke-gcloud-auth-plugin\n";
  const r = patchKubeconfig(src, TOKEN, "config");
  assert.equal(r.text, src);
  assert.equal(r.skipped[0]?.name, "a");
  assert.match(r.skipped[0]?.reason ?? "", /args/);
});

Deno.test("findExecUsers() refuses invalid YAML and YAML that is not a kubeconfig", () => {
  const bad = (text: string, re: RegExp): void =>
    assert.throws(() => findExecUsers(text, "f"), (e) => {
      assert.ok(e instanceof GateError);
      assert.equal(e.code, "bad_request");
      assert.match(e.message, re);
      return true;
    });
  bad("users: [\n", /^f is not valid YAML \(line \d+, column \d+\)/);
  bad("- a\n- b\n", /not a kubeconfig \(its top level is not a mapping\)/);
  bad("services:\n  web: {}\n", /no clusters, contexts or users/);
  bad("kind: Pod\nusers: []\n", /kind is "Pod"/);
  bad("users: 3\n", /users is not a list/);
  bad("a: 1\n---\nb: 2\n", /not valid YAML/);
  assert.deepEqual(findExecUsers("apiVersion: v1\nkind: Config\nusers: null\n", "f"), []);
});

Deno.test("yamlScalar() quotes only when a plain scalar would change meaning", () => {
  assert.equal(yamlScalar("/usr/bin/gcp-kube-token"), "/usr/bin/gcp-kube-token");
  assert.equal(yamlScalar("/a b/x"), '"/a b/x"');
  assert.equal(yamlScalar("true"), '"true"');
  assert.equal(yamlScalar("#x"), '"#x"');
  assert.equal(yamlScalar(INSTALL_HINT), JSON.stringify(INSTALL_HINT));
});
