// Worker entry of the fuzzer (see engine.mjs).
import { workerMain } from './engine.mjs';

await workerMain();
