#!/usr/bin/env node
// Entry point of the `sbc-ami` command. The CLI is TypeScript run by Node's
// own type stripping, which needs Node 22.12 or newer.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  console.error(
    `sbc-ami needs Node.js 22.12 or newer; this is ${process.versions.node}`,
  );
  process.exit(2);
}
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv);
