// Regenerates src/gen/ from the gRPC server's .proto with grpcio-tools' protoc and protoc-gen-es.
// The Python interpreter comes from $PYTHON (default: python3); it must have grpcio-tools.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const frontend = resolve(here, "..");
const protoRoot = resolve(frontend, "../../grpc_server/proto");
const target = join(frontend, "src/gen");
// --check: generate into a temporary folder and fail when src/gen differs (CI keeps them in sync).
const check = process.argv.includes("--check");
const out = check ? mkdtempSync(join(tmpdir(), "wl-gen-")) : target;
const plugin = join(frontend, "node_modules/.bin/protoc-gen-es");
const python = process.env.PYTHON || "python3";

if (!existsSync(plugin)) {
  console.error(`gen: ${plugin} is missing: run \`npm ci\` first`);
  process.exit(1);
}
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const args = [
  "-m", "grpc_tools.protoc",
  `-I${protoRoot}`,
  `--plugin=protoc-gen-es=${plugin}`,
  `--es_out=${out}`,
  "--es_opt=target=ts,import_extension=js",
  "weightslab/v1/experiment.proto",
];
const result = spawnSync(python, args, { stdio: "inherit" });
if (result.error) {
  console.error(`gen: cannot run ${python} (set $PYTHON to an interpreter with grpcio-tools): ${result.error.message}`);
  process.exit(1);
}
if (result.status !== 0) process.exit(result.status ?? 1);
if (check) {
  const files = (dir, base = "") =>
    readdirSync(join(dir, base), { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? files(dir, join(base, e.name)) : [join(base, e.name)]);
  const want = files(out).sort();
  const have = existsSync(target) ? files(target).sort() : [];
  const stale = [...new Set([...want, ...have])].filter(
    (f) => !want.includes(f) || !have.includes(f) || readFileSync(join(out, f), "utf8") !== readFileSync(join(target, f), "utf8"));
  rmSync(out, { recursive: true, force: true });
  if (stale.length) {
    console.error(`gen: src/gen is out of date with the .proto (${stale.join(", ")}): run \`npm run gen\``);
    process.exit(1);
  }
  console.log("gen: src/gen is in sync with the .proto");
}
