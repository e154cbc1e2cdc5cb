/**
 * A Citus cluster for the scale-out tests (test/citus.test.ts): CITUS_TEST_URL names a
 * coordinator database that has the citus extension and its workers registered (.ci/run
 * starts such a cluster; docs/development.md, "Scale-out tests", shows how by hand). Each test file gets
 * its own database on every node, created like that one (extension on each node, workers
 * registered on the coordinator), and dropped on every node at the file's end (kept with
 * AFD_KEEP_TEST_DATA=1).
 *
 * Without CITUS_TEST_URL the tests are skipped with a message, except under CI=true, where
 * they fail: a CI that lost its cluster must not pass without testing it.
 */
import pg from 'pg';
import { afterAll } from 'vitest';
import { parseDatabaseUrl } from '../../src/config/index.js';
import { openDatabase } from '../../src/database/db.js';
import type { Backend } from './backends.js';
import { databaseName, keepTestData } from './resources.js';

export const citusUrl = process.env.CITUS_TEST_URL || undefined;
export const inCi = process.env.CI === 'true' || process.env.CI === '1';

/** Why the Citus tests do not run here, or undefined when they do. */
export const citusMissing = citusUrl
  ? undefined
  : 'CITUS_TEST_URL is not set: the Citus tests are skipped (start a cluster and set it; docs/development.md, "Scale-out tests")';

interface Node {
  readonly host: string;
  readonly port: number;
}

function urlOf(base: string, node: Node, database: string): string {
  const url = new URL(base);
  url.hostname = node.host;
  url.port = String(node.port);
  url.pathname = `/${database}`;
  return url.toString();
}

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** A Citus backend: the coordinator's URL of this file's database, and its shard count per table. */
export interface CitusBackend extends Backend {
  /** How many shards create_distributed_table makes (citus.shard_count). */
  readonly shardCount: number;
}

/**
 * A fresh database `afd_t_<checkout>_<key>` on every node of the cluster of CITUS_TEST_URL,
 * with the extension on each and the workers registered; dropped on every node after the
 * file. The workers are the ones the coordinator of CITUS_TEST_URL knows (pg_dist_node).
 */
export async function citusBackend(key: string): Promise<CitusBackend> {
  if (!citusUrl) throw new Error(citusMissing);
  const base = new URL(citusUrl);
  const coordinator: Node = { host: base.hostname, port: Number(base.port || 5432) };
  const { workers, shardCount } = await withClient(citusUrl, async (client) => {
    const nodes = await client.query<{ host: string; port: number }>(
      "select nodename as host, nodeport as port from pg_dist_node where groupid <> 0 and noderole = 'primary' order by nodeid",
    );
    const count = await client.query<{ shard_count: string }>("select current_setting('citus.shard_count') as shard_count");
    return { workers: nodes.rows, shardCount: Number(count.rows[0]!.shard_count) };
  });
  if (workers.length === 0) throw new Error(`CITUS_TEST_URL ${citusUrl}: the coordinator has no workers registered`);
  const name = databaseName(key);
  const nodes = [coordinator, ...workers];
  const drop = async () => {
    for (const node of nodes) {
      await withClient(urlOf(citusUrl, node, 'postgres'), (c) => c.query(`drop database if exists "${name}" with (force)`));
    }
  };
  await drop();
  for (const node of nodes) {
    await withClient(urlOf(citusUrl, node, 'postgres'), (c) => c.query(`create database "${name}"`));
    await withClient(urlOf(citusUrl, node, name), (c) => c.query('set client_min_messages = warning; create extension citus'));
  }
  const url = urlOf(citusUrl, coordinator, name);
  await withClient(url, async (client) => {
    await client.query('select citus_set_coordinator_host($1, $2)', [coordinator.host, coordinator.port]);
    for (const worker of workers) await client.query('select citus_add_node($1, $2)', [worker.host, worker.port]);
  });
  afterAll(async () => {
    if (keepTestData) console.log(`AFD_KEEP_TEST_DATA=1: kept the Citus database ${name} on ${nodes.length} nodes`);
    else await drop();
  });
  return {
    name: 'postgres',
    url,
    shardCount,
    open: () => openDatabase(parseDatabaseUrl(url), { connectAttempts: 1 }),
  };
}
