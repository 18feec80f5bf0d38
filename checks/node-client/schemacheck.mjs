// Validates live answers against the relay's own GET /openapi.json (a doc check, not part of the client).
import Ajv2020 from 'ajv/dist/2020.js';
import { openSession, Problem } from './client.mjs';
const D = process.env.DEMO_DIR || '/tmp/nodecheck-demo';
const P = process.env.RELAY_PASSPHRASE;
// relay demo --keep gives the desk a passphrase of its own.
const PD = process.env.RELAY_DESK_PASSPHRASE || P;
const app = await openSession(`${D}/app`, { passphrase: P });
const api = await (await fetch(app.base + '/openapi.json')).json();
const ajv = new Ajv2020({ strict: false, validateFormats: false });
ajv.addSchema({ $id: 'api', components: api.components });
function check(who, method, tmpl, path, status, body) {
  const op = api.paths[tmpl]?.[method.toLowerCase()];
  const resp = op?.responses?.[String(status)];
  if (!resp) { console.log(`${who} ${method} ${tmpl} ${status}: NOT DOCUMENTED in openapi`); return; }
  const ct = Object.keys(resp.content || {})[0];
  if (!ct) { console.log(`${who} ${method} ${tmpl} ${status}: no content in openapi`); return; }
  const schema = JSON.parse(JSON.stringify(resp.content[ct].schema).replaceAll('"#/components', '"api#/components'));
  const v = ajv.compile(schema);
  console.log(`${who} ${method} ${tmpl} ${status}: ${v(body) ? 'matches' : 'MISMATCH ' + JSON.stringify(v.errors.slice(0, 3))}`);
}
async function get(who, c, tmpl, path) {
  try { const b = await c.call('GET', path); check(who, 'GET', tmpl, path, 200, b); return b; }
  catch (e) { if (e instanceof Problem) check(who, 'GET', tmpl, path, e.status, e.body); else throw e; }
}
const me = await get('app', app, '/v1/me', '/v1/me');
const caseId = me.cases[0].id;
await get('app', app, '/v1/cases/{case_id}', `/v1/cases/${caseId}`);
await get('app', app, '/v1/cases', '/v1/cases');
await get('app', app, '/v1/limits', '/v1/limits');
await get('app', app, '/v1/items/sent', '/v1/items/sent');
const inbox = await get('app', app, '/v1/inbox', '/v1/inbox');
if (inbox[0]) await get('app', app, '/v1/items/{item_id}/delivery', `/v1/items/${inbox[0].id}/delivery`);
await get('app', app, '/v1/directory/{person_id}', `/v1/directory/${app.person}`);
await get('app', app, '/v1/items/{item_id}', `/v1/items/itm_0000000000000000`);
await app.signOut();
const desk = await openSession(`${D}/desk`, { passphrase: PD });
await get('desk', desk, '/v1/review/queue', '/v1/review/queue');
const di = await get('desk', desk, '/v1/review/inbox', '/v1/review/inbox');
await get('desk', desk, '/v1/cases/{case_id}', `/v1/cases/${caseId}`);
await get('desk', desk, '/v1/cases/{case_id}/items', `/v1/cases/${caseId}/items`);
await get('desk', desk, '/v1/cases/{case_id}/timeline', `/v1/cases/${caseId}/timeline`);
if (di[0]) await get('desk', desk, '/v1/items/{item_id}', `/v1/items/${di[0].id}`);
await desk.signOut();
