#!/usr/bin/env node
// Entry point of the `sbc-ami` command. The CLI is TypeScript run by Node's
// own type stripping, on by default from Node 22.18 (and 23.6).
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18) || (major === 23 && minor < 6)) {
  console.error(
    `sbc-ami needs Node.js 22.18 or newer; this is ${process.versions.node}`,
  );
  process.exit(2);
}
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv);
