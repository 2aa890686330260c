// Times node jose's ES256 verification the way `verify-bench verify` times ours.
//
// usage: node verify_jose.mjs TOKEN_FILE COUNT WARMUP PARAMS_JSON NODE_MODULES
// PARAMS_JSON is `verify-bench params`: {jwks, issuer, audience}. Each token goes through
// jwtVerify with a local key set (createLocalJWKSet: the key picked by `kid`), ES256 only, typ
// at+jwt, issuer and audience, exp nbf iss aud sub required, 5 s tolerance; jose is resolved from
// NODE_MODULES (./scripts/bench.sh installs scripts/interop's pinned jose in .dev/bench-node).
// Prints one JSON line: {impl, count, seconds, ns_per_op, ops_per_sec, cpu_ns_per_op} (CPU time of
// the process: it includes node's GC and JIT threads, work node does for the loop).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [tokenFile, countArg, warmupArg, paramsArg, nodeModules] = process.argv.slice(2);
const require = createRequire(join(nodeModules, 'noop.js'));
const { createLocalJWKSet, jwtVerify } = await import(pathToFileURL(require.resolve('jose')).href);
const { version } = JSON.parse(readFileSync(join(nodeModules, 'jose', 'package.json'), 'utf8'));

const count = Number(countArg);
const warmup = Number(warmupArg);
const { jwks, issuer, audience } = JSON.parse(paramsArg);
const tokens = readFileSync(tokenFile, 'ascii').split('\n').filter((line) => line.length > 0);
const keys = createLocalJWKSet(jwks);
const options = {
  algorithms: ['ES256'], typ: 'at+jwt', issuer, audience, clockTolerance: 5,
  requiredClaims: ['exp', 'nbf', 'iss', 'aud', 'sub'],
};

async function run(n) {
  let ok = 0;
  for (let i = 0; i < n; i++) {
    const { payload } = await jwtVerify(tokens[i % tokens.length], keys, options);
    if (payload.sub) ok++;
  }
  return ok;
}

await run(warmup);
const cpuStart = process.cpuUsage();
const start = process.hrtime.bigint();
const ok = await run(count);
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
const cpu = process.cpuUsage(cpuStart);
if (ok !== count) {
  console.error(`${count - ok} of ${count} tokens failed to verify`);
  process.exit(1);
}
console.log(JSON.stringify({
  impl: `node jose ${version} (node ${process.version})`,
  count,
  seconds,
  ns_per_op: (seconds * 1e9) / count,
  ops_per_sec: count / seconds,
  cpu_ns_per_op: ((cpu.user + cpu.system) * 1000) / count,
}));
