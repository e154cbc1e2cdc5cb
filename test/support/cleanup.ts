/**
 * A setup file of every test file (vitest.config.ts): at the file's end, after its own hooks
 * have closed their connections, drops the server databases and removes the temporary
 * directories the file created (test/support/resources.ts; kept with AFD_KEEP_TEST_DATA=1).
 */
import { afterAll } from 'vitest';
import { removeRegistered } from './resources.js';

afterAll(removeRegistered);
