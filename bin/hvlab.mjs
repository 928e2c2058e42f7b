#!/usr/bin/env node
// Entry point of the `hvlab` command: registers tsx so the TypeScript VMM runs without a build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../emu/cli/main.ts');
process.exitCode = await main(process.argv);
