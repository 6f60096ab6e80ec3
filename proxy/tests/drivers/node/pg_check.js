// A node-postgres session whose transcript must be the same through pgcache
// as against the server. Usage: node pg_check.js CONNECTION_STRING
'use strict';
const { Client } = require('pg');

function show(...parts) {
  console.log(parts.map((p) => JSON.stringify(p)).join(' | '));
}

async function main() {
  const url = process.argv[2];
  const conn = new Client({ connectionString: url });
  await conn.connect();
  await conn.query('TRUNCATE items');
  await conn.query(
    "INSERT INTO items (id, name, price, tags) VALUES " +
      "(1, 'apple', 1.50, ARRAY['red']), (2, 'pear', 2.25, '{}'), (3, 'plum', 0.99, NULL)",
  );

  // Parameterized reads: an unnamed statement (Parse/Bind/Describe/Execute/Sync
  // every time), then a named one (Parse once, then Bind/Execute).
  const byId = 'SELECT id, name, price, tags FROM items WHERE id = $1';
  for (let round = 0; round < 5; round++) {
    for (const id of [1, 2, 3]) {
      const unnamed = await conn.query(byId, [id]);
      const named = await conn.query({ name: 'by-id', text: byId, values: [id] });
      if (round === 0 || round === 4) show('read', round, unnamed.rows, named.rows);
    }
  }
  const arrays = await conn.query({ text: byId, values: [1], rowMode: 'array' });
  show('array rows', arrays.rows, arrays.fields.map((f) => [f.name, f.dataTypeID]));

  // A write through the proxy is seen by the next read of the same query.
  await conn.query('UPDATE items SET price = price + 1 WHERE id = $1', [2]);
  show('after update', (await conn.query(byId, [2])).rows);
  show('after update, named', (await conn.query({ name: 'by-id', text: byId, values: [2] })).rows);

  // Errors.
  for (const sql of ['SELECT 1 / 0', 'SELECT nope FROM items']) {
    try {
      await conn.query(sql);
    } catch (e) {
      show('error', e.code, e.message);
    }
  }

  // Transactions.
  await conn.query('BEGIN');
  await conn.query("INSERT INTO items (id, name, price) VALUES (10, 'gone', 1)");
  await conn.query('ROLLBACK');
  await conn.query('BEGIN');
  await conn.query("INSERT INTO items (id, name, price) VALUES (11, 'kept', 2)");
  await conn.query('COMMIT');
  show('count', (await conn.query('SELECT count(*) FROM items')).rows);

  // Several statements in one simple query.
  const multi = await conn.query('SELECT 1 AS a; SELECT 2 AS b');
  show('multi', multi.map((r) => r.rows));

  // LISTEN/NOTIFY between two connections.
  const listener = new Client({ connectionString: url });
  await listener.connect();
  const got = new Promise((resolve) => listener.on('notification', (n) => resolve([n.channel, n.payload])));
  await listener.query('LISTEN news');
  await conn.query("NOTIFY news, 'hello'");
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error('no notification')), 10000);
  });
  show('notify', await Promise.race([got, timeout]));
  clearTimeout(timer);
  await listener.end();

  await conn.end();
  console.log('done');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
