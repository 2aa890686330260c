// Times node jsonwebtoken's HS256 verification the way `verify-bench verify` times ours.
//
// usage: node verify_node.js TOKEN_FILE COUNT WARMUP SECRET ISSUER AUDIENCE
// Prints one JSON line: {"impl", "count", "seconds", "ns_per_op", "ops_per_sec", "cpu_ns_per_op"}
// (CPU time of the process, which does not grow while other processes have the core; it includes
// node's GC and JIT threads, which is work node does for the loop).
// jsonwebtoken is resolved from NODE_PATH (./scripts/bench.sh installs it in .dev/bench-node).
'use strict';

const fs = require('fs');
const jwt = require('jsonwebtoken');
const { version } = require('jsonwebtoken/package.json');

const [tokenFile, countArg, warmupArg, secret, issuer, audience] = process.argv.slice(2);
const count = Number(countArg);
const warmup = Number(warmupArg);
const tokens = fs.readFileSync(tokenFile, 'ascii').split('\n').filter((line) => line.length > 0);
const options = { algorithms: ['HS256'], audience, issuer, clockTolerance: 5 };

function run(n) {
  let ok = 0;
  for (let i = 0; i < n; i++) {
    const claims = jwt.verify(tokens[i % tokens.length], secret, options);
    if (claims.sub) ok++;
  }
  return ok;
}

run(warmup);
const cpuStart = process.cpuUsage();
const start = process.hrtime.bigint();
const ok = run(count);
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
const cpu = process.cpuUsage(cpuStart);
if (ok !== count) {
  console.error(`${count - ok} of ${count} tokens failed to verify`);
  process.exit(1);
}
console.log(JSON.stringify({
  impl: `node jsonwebtoken ${version} (node ${process.version})`,
  count,
  seconds,
  ns_per_op: (seconds * 1e9) / count,
  ops_per_sec: count / seconds,
  cpu_ns_per_op: ((cpu.user + cpu.system) * 1000) / count,
}));
