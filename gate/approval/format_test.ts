import assert from "node:assert/strict";
import { describeRequest, formatDuration, requestSummary, requestTitle } from "./format.ts";
import type { ApprovalRequest } from "./types.ts";

Deno.test("formatDuration() reads like a person would say it", () => {
  assert.equal(formatDuration(28800), "8 h");
  assert.equal(formatDuration(5400), "1 h 30 min");
  assert.equal(formatDuration(600), "10 min");
  assert.equal(formatDuration(90), "1 min 30 s");
  assert.equal(formatDuration(30), "30 s");
});

Deno.test("describeRequest() re-redacts and strips what the caller sent (the gate trusts no one)", () => {
  const req: ApprovalRequest = {
    id: "id1",
    email: "e@x.com\u202e",
    project: undefined,
    scopes: [],
    ttlSeconds: 60,
    reason: undefined,
    command: ["curl", "-H", "Authorization: Bearer ya29.secret", "\u001b[2Jclear"],
    notes: [],
    kind: "token",
  };
  const text = describeRequest(req).join("\n");
  assert.ok(!text.includes("ya29.secret"));
  assert.ok(!text.includes("\u001b") && !text.includes("\u202e"));
  assert.match(text, /Project:\s+\(not given\)/);
  assert.match(text, /Reason:\s+\(none given\)/);
  assert.match(text, /prod token/);
});

const BASE: ApprovalRequest = {
  id: "ab12cd34",
  email: "eng@example.com",
  project: "prod-p",
  scopes: ["https://www.googleapis.com/auth/cloud-platform"],
  ttlSeconds: 600,
  reason: "fix",
  command: ["gcloud", "storage", "ls"],
  notes: [],
  kind: "session",
  code: "K7P-QX2",
  serviceAccount: "prod@p.iam.gserviceaccount.com",
};

Deno.test("describeRequest() shows with-prod's code, or says there is none", () => {
  const text = describeRequest(BASE).join("\n");
  assert.match(text, /^Code: +K7P-QX2 — must match what with-prod printed$/m);
  const { code: _, ...without } = BASE;
  assert.match(describeRequest(without).join("\n"), /^Code: +none \(not from with-prod\)$/m);
});

Deno.test("describeRequest() says when the grant is the engineer's own credentials", () => {
  const limited = describeRequest(BASE).join("\n");
  assert.match(limited, /^Grants: +tokens of prod@p\.iam\.gserviceaccount\.com/m);
  assert.doesNotMatch(limited, /YOUR OWN/);
  const own = describeRequest({ ...BASE, serviceAccount: undefined }).join("\n");
  assert.match(
    own,
    /^Grants: +YOUR OWN credentials \(eng@example\.com\) — all your permissions, ~1 h, not revocable early; set prod_service_account/m,
  );
  assert.match(own, /^Scopes: .*NOT applied/m);
  assert.match(own, /^Lifetime: .*revoking cannot shorten it/m);
  assert.match(requestSummary({ ...BASE, serviceAccount: undefined }), /YOUR OWN credentials/);
});

Deno.test("describeRequest() states the real life of each prod_service_account token", () => {
  const session = describeRequest({ ...BASE, ttlSeconds: 28_800, tokenTtlSeconds: 600 });
  assert.match(
    session.join("\n"),
    /^Grants: +tokens of prod@p\.iam\.gserviceaccount\.com .*each valid 10 min, renewed only while the session lasts$/m,
  );
  const token = describeRequest({ ...BASE, kind: "token", ttlSeconds: 300, tokenTtlSeconds: 600 });
  assert.match(token.join("\n"), /^Grants: .*each valid 5 min$/m);
});

Deno.test("describeRequest() says what a PAM grant gives instead of YOUR OWN credentials", () => {
  const req = {
    ...BASE,
    serviceAccount: undefined,
    grants: "a Privileged Access Manager grant of projects/p/locations/global/entitlements/e\n" +
      "(roles: roles/run.admin) for 1 h",
  };
  const text = describeRequest(req).join("\n");
  assert.match(text, /^Grants: +a Privileged Access Manager grant of projects\/p\/.* \(roles: /m);
  assert.doesNotMatch(text, /YOUR OWN credentials \(/);
  assert.match(text, /^Lifetime: .*the grant's roles are withdrawn when it ends/m);
  assert.match(requestSummary(req), /PAM grant/);
});

Deno.test("describeRequest() caps command lines and line width when asked", () => {
  const command = ["sh", ...Array.from({ length: 80 }, (_, i) => `arg${i}-${"x".repeat(300)}`)];
  const lines = describeRequest({ ...BASE, command }, { maxCommandLines: 40, maxLineChars: 200 });
  assert.ok(lines.every((l) => l.length <= 200 + 40), "a line is too wide");
  assert.equal(lines.filter((l) => /^ +\d+ {2}/.test(l)).length, 40);
  assert.ok(lines.some((l) => /… 41 more arguments not shown here/.test(l)));
  assert.ok(lines.some((l) => /… \(\d+ more characters\)$/.test(l)));
});

Deno.test("requestSummary() repeats project, scopes, lifetime, code and id in one line", () => {
  assert.equal(
    requestSummary(BASE),
    "project prod-p, scopes cloud-platform, 10 min, code K7P-QX2, request ab12cd34",
  );
  const { code: _, ...without } = BASE;
  assert.match(requestSummary(without), /code none,/);
});

Deno.test("describeRequest() states what an approval really hands on (relays, project, display)", () => {
  const text = describeRequest(BASE).join("\n");
  assert.match(text, /\(kubectl proxy\/port-forward, cloud-sql-proxy, IAP tunnels\)/);
  assert.match(text, /project is the caller's default, not a boundary/);
  assert.match(text, /never share your X\/Wayland/);
  // Before the request id, so a capped listing still shows them above the question.
  assert.ok(text.indexOf("Know before you allow") < text.indexOf("Request:"));
});

Deno.test("describeRequest() says which machine asks, as stated, or nothing when not stated", () => {
  const text = describeRequest({ ...BASE, from: "build-vm-3 via ssh" }).join("\n");
  assert.match(text, /^From: +build-vm-3 via ssh \(as stated by the caller; advisory\)$/m);
  assert.doesNotMatch(describeRequest(BASE).join("\n"), /^From:/m);
});

Deno.test("the profile a request came from is in the title, the description and the summary (only with profiles)", () => {
  const base: ApprovalRequest = {
    id: "id2",
    email: "e@x.com",
    project: "p",
    scopes: [],
    ttlSeconds: 600,
    reason: undefined,
    command: undefined,
    notes: [],
    kind: "session",
  };
  const named = { ...base, profile: "agent" };
  assert.match(requestTitle(named), /^gcp-gate \[profile agent\]: allow PRODUCTION access/);
  assert.ok(describeRequest(named).includes("Profile:   agent (the socket it came from)"));
  assert.match(requestSummary(named), /^profile agent, project p/);
  assert.match(requestTitle(base), /^gcp-gate: allow/);
  assert.ok(!describeRequest(base).some((l) => l.startsWith("Profile:")));
  assert.match(requestSummary(base), /^project p/);
});
