/** The metadata tree GCE serves under `/computeMetadata/`, built from its sources. */
import { DEFAULT_SCOPES } from "../protocol.ts";
import type { IdentitySources, TokenSources } from "./sources.ts";
import { constText, type Dir, emptyDir, leaf, staticDir } from "./tree.ts";

/** `instance/service-accounts/`: `default/` and the account's email, one directory. */
function serviceAccountsDir(id: IdentitySources, tokens: TokenSources): Dir {
  const { email } = id;
  const accountDir = staticDir({
    aliases: constText(() => Promise.resolve("default")),
    email: constText(email),
    identity: leaf(tokens.identityToken),
    scopes: constText(() => Promise.resolve(DEFAULT_SCOPES.join("\n") + "\n")),
    token: leaf(tokens.accessToken),
  }, async () => ({ aliases: ["default"], email: await email(), scopes: [...DEFAULT_SCOPES] }));
  return {
    kind: "dir",
    list: async () => ["default/", `${await email()}/`],
    async child(name) {
      if (name === "default") return accountDir;
      // Some gcloud versions ask by email; compare only once a name looks like one.
      return name.includes("@") && name.toLowerCase() === (await email()).toLowerCase()
        ? accountDir
        : undefined;
    },
    json: async () => {
      const sa = await accountDir.json();
      return { default: sa, [await email()]: sa };
    },
  };
}

function instanceDir(id: IdentitySources, tokens: TokenSources): Dir {
  const serviceAccounts = serviceAccountsDir(id, tokens);
  return staticDir({
    attributes: emptyDir(),
    hostname: constText(id.hostname),
    id: constText(() => Promise.resolve(id.instanceId())),
    name: constText(() => Promise.resolve(id.instanceName)),
    "service-accounts": serviceAccounts,
    zone: constText(id.zonePath),
  }, async () => ({
    attributes: {},
    hostname: await id.hostname(),
    id: Number(id.instanceId()),
    name: id.instanceName,
    serviceAccounts: await serviceAccounts.json(),
    zone: await id.zonePath(),
  }));
}

function projectDir(id: IdentitySources): Dir {
  return staticDir({
    attributes: emptyDir(),
    // Digits only, no newline: gcloud checks isdigit() on the whole body.
    "numeric-project-id": constText(id.projectNumber),
    "project-id": constText(id.projectId),
  }, async () => ({
    attributes: {},
    numericProjectId: Number(await id.projectNumber()),
    projectId: await id.projectId(),
  }));
}

function universeDir(id: IdentitySources): Dir {
  const universeLeaf = constText(id.universe);
  return staticDir(
    { "universe-domain": universeLeaf },
    async () => ({ universeDomain: await id.universe() }),
    // Go's x/oauth2 asks with an underscore; not listed, like GCE.
    { universe_domain: universeLeaf },
  );
}

/** The root of the tree (`/computeMetadata/`). */
export function metadataTree(id: IdentitySources, tokens: TokenSources): Dir {
  const instance = instanceDir(id, tokens);
  const project = projectDir(id);
  const universe = universeDir(id);
  const v1 = staticDir(
    { instance, project, universe },
    async () => ({
      instance: await instance.json(),
      project: await project.json(),
      universe: await universe.json(),
    }),
  );
  return staticDir({ v1 }, async () => ({ v1: await v1.json() }));
}
