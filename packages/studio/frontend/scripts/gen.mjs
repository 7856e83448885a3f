// Regenerates src/gen/ from the gRPC server's .proto with grpcio-tools' protoc and protoc-gen-es.
// The Python interpreter comes from $PYTHON (default: python3); it must have grpcio-tools.
import { spawnSync } from "node:child_process";
import { existsSync, rmSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const frontend = resolve(here, "..");
const protoRoot = resolve(frontend, "../../grpc_server/proto");
const out = join(frontend, "src/gen");
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
process.exit(result.status ?? 1);
