// Generates src/schema.ts from ../openapi.json with openapi-typescript.
// `node scripts/generate.mjs --check` generates into a temp dir instead and
// fails if the committed src/schema.ts differs from it.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const spec = join(root, "..", "openapi.json");
const committed = join(root, "src", "schema.ts");
const bin = join(root, "node_modules", ".bin", "openapi-typescript");

const generate = (out) =>
  execFileSync(bin, [spec, "--output", out], { cwd: root, stdio: ["ignore", "ignore", "inherit"] });

if (!process.argv.includes("--check")) {
  generate(committed);
  console.log("generated src/schema.ts from ../openapi.json");
} else {
  const dir = mkdtempSync(join(tmpdir(), "eus-schema-"));
  try {
    const fresh = join(dir, "schema.ts");
    generate(fresh);
    if (readFileSync(fresh, "utf8") !== readFileSync(committed, "utf8")) {
      console.error(
        "src/schema.ts is out of date with ../openapi.json.\n" +
          "Run `npm run generate` in openapi/ts-client and commit the result.",
      );
      process.exit(1);
    }
    console.log("src/schema.ts is up to date with ../openapi.json");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
