// Drives a real expo-updates-server through the generated client only.
// Spawns $EXPO_UPDATES_SERVER_BIN on a free port with a fresh DATA_DIR, or
// uses the server already running at $EXPO_UPDATES_URL.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createExpoUpdatesClient, type ErrorBody, type Schemas } from "../src/index.js";

let server: ChildProcess | undefined;
let dataDir: string | undefined;
let output = "";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

async function startServer(bin: string): Promise<string> {
  const port = await freePort();
  dataDir = mkdtempSync(join(tmpdir(), "eus-ts-client-"));
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), HOST: "127.0.0.1", DATA_DIR: dataDir, RUST_LOG: "warn" };
  // cwd is the fresh dir so no stray .env is read.
  const child = spawn(bin, [], { cwd: dataDir, env, stdio: ["ignore", "pipe", "pipe"] });
  server = child;
  const collect = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000));
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);

  const exited = new Promise<never>((_, reject) => {
    child.once("error", (e) => reject(new Error(`cannot start ${bin}: ${e.message}`)));
    child.once("exit", (code, signal) =>
      reject(new Error(`server exited before it was ready (code ${code}, signal ${signal}):\n${output}`)),
    );
  });
  exited.catch(() => {}); // only observed through the race below
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  const ready = (async () => {
    while (Date.now() < deadline) {
      try {
        if ((await fetch(`${url}/readyz`)).status === 200) return url;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`server not ready on ${url}/readyz within 30 s:\n${output}`);
  })();
  return Promise.race([ready, exited]);
}

async function stopServer(): Promise<void> {
  const child = server;
  server = undefined;
  if (child && child.exitCode === null && child.signalCode === null) {
    const gone = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    await gone;
    clearTimeout(timer);
  }
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  dataDir = undefined;
}
process.once("exit", () => server?.kill("SIGKILL"));

let baseUrl = "";

before(async () => {
  const external = process.env.EXPO_UPDATES_URL;
  if (external) {
    baseUrl = external;
    return;
  }
  const bin = process.env.EXPO_UPDATES_SERVER_BIN;
  if (!bin) throw new Error("set EXPO_UPDATES_SERVER_BIN to the expo-updates-server binary (or EXPO_UPDATES_URL to a running server)");
  if (!existsSync(bin)) throw new Error(`EXPO_UPDATES_SERVER_BIN=${bin}: no such file (build it with cargo build -p expo-updates-server)`);
  try {
    baseUrl = await startServer(bin);
  } catch (e) {
    await stopServer();
    throw e;
  }
});

after(stopServer);

describe("expo-updates-server via the generated client", () => {
  // Unique names, so the suite also runs against a long-lived EXPO_UPDATES_URL server.
  const suffix = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const username = `ts-client-${suffix}`;
  const email = `${username}@example.com`;
  const password = "correct horse battery staple";
  let token = "";
  let user: Schemas["UserBody"];
  let project: Schemas["ProjectBody"];
  let apiKey: Schemas["CreatedKeyBody"];

  it("registers a user", async () => {
    const client = createExpoUpdatesClient(baseUrl);
    const { data, error, response } = await client.POST("/api/auth/register", { body: { username, email, password } });
    assert.equal(response.status, 201, JSON.stringify(error));
    assert.ok(data);
    assert.equal(data.user.username, username);
    assert.equal(data.user.email, email);
    assert.ok(data.token);
    user = data.user;
  });

  it("logs in and reads /api/auth/me", async () => {
    const anonymous = createExpoUpdatesClient(baseUrl);
    const login = await anonymous.POST("/api/auth/login", { body: { login: username, password } });
    assert.equal(login.response.status, 200, JSON.stringify(login.error));
    assert.ok(login.data);
    assert.equal(login.data.user.id, user.id);
    token = login.data.token;

    const me = await createExpoUpdatesClient(baseUrl, { token }).GET("/api/auth/me");
    assert.equal(me.response.status, 200, JSON.stringify(me.error));
    assert.deepEqual(me.data, user);
  });

  it("rejects a wrong password with 401 and an ErrorBody", async () => {
    const { data, error, response } = await createExpoUpdatesClient(baseUrl).POST("/api/auth/login", {
      body: { login: email, password: "wrong password" },
    });
    assert.equal(response.status, 401);
    assert.equal(data, undefined);
    const body: ErrorBody | undefined = error;
    assert.ok(body);
    assert.equal(typeof body.error, "string");
    assert.ok(body.error.length > 0);
  });

  it("rejects /api/auth/me without a token with 401", async () => {
    const { error, response } = await createExpoUpdatesClient(baseUrl).GET("/api/auth/me");
    assert.equal(response.status, 401);
    assert.equal(typeof error?.error, "string");
  });

  it("creates a project and an API key", async () => {
    const client = createExpoUpdatesClient(baseUrl, { token });
    const created = await client.POST("/api/projects", { body: { name: "TS client test", slug: `ts-${suffix}` } });
    assert.equal(created.response.status, 201, JSON.stringify(created.error));
    assert.ok(created.data);
    assert.equal(created.data.slug, `ts-${suffix}`);
    project = created.data;

    const key = await client.POST("/api/projects/{id}/keys", {
      params: { path: { id: project.id } },
      body: { name: "ci" },
    });
    assert.equal(key.response.status, 201, JSON.stringify(key.error));
    assert.ok(key.data);
    assert.equal(key.data.key.projectId, project.id);
    assert.equal(key.data.key.name, "ci");
    assert.ok(key.data.secret);
    apiKey = key.data;
  });

  it("identifies the API key at /api/keys/current", async () => {
    const { data, error, response } = await createExpoUpdatesClient(baseUrl, { token: apiKey.secret }).GET("/api/keys/current");
    assert.equal(response.status, 200, JSON.stringify(error));
    assert.ok(data);
    assert.equal(data.id, apiKey.key.id);
    assert.equal(data.projectId, project.id);
    assert.equal(data.keyPrefix, apiKey.key.keyPrefix);
  });

  it("lists no updates, with the user token and with the API key", async () => {
    const byUser = await createExpoUpdatesClient(baseUrl, { token }).GET("/api/projects/{id}/updates", {
      params: { path: { id: project.id }, query: { limit: 10 } },
    });
    assert.equal(byUser.response.status, 200, JSON.stringify(byUser.error));
    assert.deepEqual(byUser.data?.updates, []);
    // Optional fields are nullable in the spec: the last page says so with null.
    const last: string | null | undefined = byUser.data?.nextCursor;
    assert.equal(last, null);

    const byKey = await createExpoUpdatesClient(baseUrl, { token: apiKey.secret }).GET("/api/updates/{project}/updates", {
      params: { path: { project: project.id } },
    });
    assert.equal(byKey.response.status, 200, JSON.stringify(byKey.error));
    assert.deepEqual(byKey.data?.updates, []);
  });
});
