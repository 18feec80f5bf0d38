#!/usr/bin/env node
// A mediation-relay client written from docs/http-api.md, docs/envelope-v2.md,
// docs/problems.md and GET /openapi.json only.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as L from './lib.mjs';

const { sodium, VerificationError } = L;

export class Problem extends Error {
  constructor(status, body, headers) {
    super(`${status} ${body?.type ?? '(no problem document)'}`);
    this.status = status; this.body = body || {}; this.headers = headers;
  }
  get slug() { return (this.body.type || '').split(':').pop(); }
  print() {
    const b = this.body;
    console.error(`problem: status=${this.status} type=${b.type} title=${JSON.stringify(b.title)} request_id=${b.request_id}` +
      Object.entries(b).filter(([k]) => !['type', 'title', 'status', 'instance', 'request_id'].includes(k))
        .map(([k, v]) => ` ${k}=${JSON.stringify(v)}`).join('') +
      (this.headers?.get('retry-after') ? ` retry-after=${this.headers.get('retry-after')}` : ''));
  }
}

// ---------------------------------------------------------------- profile
export function loadProfile(dir) {
  const p = L.parseStrict(fs.readFileSync(path.join(dir, 'profile.json'), 'utf8'));
  for (const k of ['url', 'device_id', 'device_token', 'device_kind', 'trust_root'])
    if (typeof p[k] !== 'string') throw new Error(`profile.json: ${k} missing`);
  if (!p.device_token.startsWith(p.device_id + '.')) throw new Error('profile.json: device_token does not belong to device_id');
  p.trustRoot = L.b64decode(p.trust_root, 32);
  const keyFile = path.join(dir, 'identity.key');
  p.identityKey = fs.existsSync(keyFile) ? new Uint8Array(fs.readFileSync(keyFile)) : null;
  return p;
}

// ---------------------------------------------------------------- HTTP
export class Relay {
  constructor(profile) {
    const u = new URL(profile.url);
    // An IP literal in 127.0.0.0/8, ::1 or the name localhost: never a name that starts like one.
    const loop = ['localhost', '[::1]', '::1'].includes(u.hostname) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(u.hostname);
    if (u.protocol !== 'https:' && !(u.protocol === 'http:' && loop)) throw new Error('InsecureTransport: plain http off loopback');
    this.base = profile.url.replace(/\/$/, '');
    this.profile = profile;
    this.session = null;
    this.person = null;        // signed-in person id
    this.id = null;            // unlocked identity
    this.enrollments = new Map();
  }
  headers(extra = {}, { device = true, session = true } = {}) {
    const h = { ...extra };
    if (device) h['X-Relay-Device'] = this.profile.device_token;
    if (session && this.session) h.Authorization = `Bearer ${this.session}`;
    return h;
  }
  async raw(method, route, { body, json, headers = {}, device = true, session = true } = {}) {
    const init = { method, headers: this.headers(headers, { device, session }) };
    if (json !== undefined) { init.body = JSON.stringify(json); init.headers['Content-Type'] = 'application/json'; }
    else if (body !== undefined) init.body = body;
    const res = await fetch(this.base + route, init);
    if (res.status >= 400) {
      const text = await res.text();
      let doc = null;
      try { doc = L.parseStrict(text); } catch { /* not JSON */ }
      if (!(res.headers.get('content-type') || '').startsWith('application/problem+json'))
        console.error(`note: error answer without application/problem+json (${res.headers.get('content-type')})`);
      throw new Problem(res.status, doc, res.headers);
    }
    return res;
  }
  async call(method, route, opts) {
    const res = await this.raw(method, route, opts);
    if (res.status === 204) return null;
    return L.parseStrict(await res.text());
  }
  async bytes(route, maxSize) {
    const res = await this.raw('GET', route);
    const reader = res.body.getReader();
    const parts = []; let n = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      n += value.length;
      if (n > maxSize) { await reader.cancel(); throw new VerificationError('blob longer than signed size'); }
      parts.push(value);
    }
    return new Uint8Array(Buffer.concat(parts));
  }

  // ------------------------------------------------------------ signing in
  async signIn(personId, identity) {
    const ch = await this.call('POST', '/v1/auth/challenge', { json: { person_id: personId }, session: false });
    const statement = { v: 2, type: 'login', challenge: ch.challenge, device_id: this.profile.device_id, person_id: personId };
    const signature = L.sign('login', statement, identity.signSeed);
    const s = await this.call('POST', '/v1/auth/session', { json: { challenge_id: ch.challenge_id, signature }, session: false });
    this.session = s.session_token; this.person = personId; this.id = identity; this.role = s.role;
    // Our own enrollment must be ours, verified to the trust root, with exactly these keys.
    const me = await this.enrollment(personId);
    if (!Buffer.from(me.signPk).equals(Buffer.from(identity.signPk)) || !Buffer.from(me.boxPk).equals(Buffer.from(identity.boxPk))) {
      await this.signOut();
      throw new VerificationError('unlocked keys are not those of the enrollment');
    }
    return s;
  }
  async signOut() {
    if (!this.session) return;
    try { await this.call('DELETE', '/v1/auth/session'); } finally { this.session = null; this.id = null; }
  }

  // ------------------------------------------------------------ the enrollment chain
  async enrollment(personId, depth = 1) {
    if (this.enrollments.has(personId)) return this.enrollments.get(personId);
    if (depth > 5) throw new VerificationError('enrollment chain longer than five');
    const entry = await this.call('GET', `/v1/directory/${encodeURIComponent(personId)}`);
    const bytes = L.b64decode(entry.enrollment);
    const doc = L.parseStrict(Buffer.from(bytes).toString('utf8'));
    L.checkDocument('enrollment', doc);
    if (doc.person_id !== personId) throw new VerificationError('directory answered for someone else');
    let signerPk;
    if (doc.enrolled_by === personId) {
      if (!Buffer.from(L.b64decode(doc.sign_pk, 32)).equals(Buffer.from(this.profile.trustRoot)))
        throw new VerificationError('self-signed enrollment that is not the trust root');
      signerPk = L.b64decode(doc.sign_pk, 32);
    } else {
      const s = await this.enrollment(doc.enrolled_by, depth + 1);
      if (s.role !== 'coordinator') throw new VerificationError('enrolled by someone who is not a coordinator');
      if (s.chainLength + depth > 5) throw new VerificationError('enrollment chain longer than five');
      signerPk = s.signPk;
    }
    L.verify('enrollment', doc, entry.enrollment_sig, signerPk);
    // The bytes the relay sent must be the canonical form (they are what was signed).
    if (!L.canonical(doc).equals(Buffer.from(bytes))) throw new VerificationError('enrollment bytes not canonical');
    const e = {
      id: personId, role: doc.role, side: doc.side, signPk: L.b64decode(doc.sign_pk, 32), boxPk: L.b64decode(doc.box_pk, 32),
      label: entry.label, status: entry.status,
      chainLength: doc.enrolled_by === personId ? 1 : this.enrollments.get(doc.enrolled_by).chainLength + 1,
    };
    if (e.chainLength > 5) throw new VerificationError('enrollment chain longer than five');
    e.fingerprint = L.fingerprint(e.signPk, e.boxPk);
    this.enrollments.set(personId, e);
    return e;
  }
  async enrollmentAs(personId, role) {
    const e = await this.enrollment(personId);
    if (e.role !== role) throw new VerificationError(`${personId} is not enrolled as ${role}`);
    return e;
  }

  // ------------------------------------------------------------ sending
  async sealItem({ caseId, recipient, plaintext, contentType }) {
    const kase = await this.call('GET', `/v1/cases/${caseId}`);
    // The participant's view has no mediator status: it leaves revoked mediators out (docs).
    const mediators = kase.mediators.filter((m) => m.status === undefined || m.status === 'active');
    const readers = [];
    for (const m of mediators) readers.push(await this.enrollmentAs(m.id, 'mediator'));
    const me = await this.enrollment(this.person);
    readers.push(me);
    const key = sodium.crypto_secretstream_xchacha20poly1305_keygen();
    const blob = L.encryptBlob(Buffer.from(plaintext), key);
    const keys = {};
    for (const r of readers) keys[r.id] = L.sealKey(key, r.boxPk);
    const manifest = {
      v: 2, type: 'item', item_id: L.randomId('itm'), case_id: caseId, kind: 'letter', sender: this.person,
      recipient, created_at: L.nowTime(), content_type: contentType, size: blob.length, hash: L.hash(blob), keys,
    };
    const signature = L.sign('manifest', manifest, this.id.signSeed);
    return { manifest, signature, blob };
  }
  async submit({ manifest, signature, blob }, { tus = false, pieceSize } = {}) {
    const meta = { manifest, signature };
    const form = new FormData();
    if (tus) meta.upload_id = await this.tusUpload(blob, pieceSize);
    form.append('meta', new Blob([JSON.stringify(meta)], { type: 'application/json' }));
    if (!tus) form.append('content', new Blob([blob], { type: 'application/octet-stream' }), 'sealed.bin');
    return this.call('POST', '/v1/items', { body: form });
  }
  async tusUpload(blob, pieceSize = 8 * 1024 * 1024) {
    let patches = 0;
    const T = { 'Tus-Resumable': '1.0.0' };
    const res = await this.raw('POST', '/v1/uploads', { headers: { ...T, 'Upload-Length': String(blob.length) } });
    const loc = res.headers.get('location');
    const uploadId = loc.split('/').pop();
    let offset = Number((await this.raw('HEAD', loc, { headers: T })).headers.get('upload-offset'));
    while (offset < blob.length) {
      const piece = blob.subarray(offset, offset + pieceSize);
      const sum = (await import('node:crypto')).createHash('sha256').update(piece).digest('base64');
      const r = await this.raw('PATCH', loc, {
        headers: { ...T, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': String(offset), 'Upload-Checksum': `sha256 ${sum}` },
        body: piece,
      });
      offset = Number(r.headers.get('upload-offset')); patches++;
    }
    console.log(`tus: ${blob.length} bytes in ${patches} PATCH(es) to ${uploadId}`);
    return uploadId;
  }

  // ------------------------------------------------------------ the mediator's release
  async release(itemId) { return this.decide(itemId, { decision: 'release' }); }
  // decision: release (the letter as written, re-sealed to the recipient), return (an optional
  // note sealed to the sender) or withhold (a reason code, no content).
  async decide(itemId, { decision: kind, note = null, reason = null }) {
    const item = await this.call('GET', `/v1/items/${itemId}`);
    const m = item.manifest;
    const sender = await this.enrollment(m.sender);
    L.verify('manifest', m, item.signature, sender.signPk);
    if (m.item_id !== itemId) throw new VerificationError('manifest is for another item');
    if (!m.keys[this.person]) throw new VerificationError('no key for this mediator');
    const blob = await this.bytes(`/v1/items/${itemId}/content`, m.size);
    if (blob.length !== m.size || L.hash(blob) !== m.hash) throw new VerificationError('content does not match manifest');
    const plain = L.decryptBlob(blob, L.openKey(m.keys[this.person], this.id));
    if (m.recipient === 'mediators') throw new Error('addressed to the mediators: nothing to decide');
    const reader = kind === 'return' ? sender : await this.enrollmentAs(m.recipient, 'participant');
    let out = null, delivery = null;
    const body = kind === 'release' ? plain : kind === 'return' && note !== null ? Buffer.from(note, 'utf8') : null;
    if (body) {
      const key = sodium.crypto_secretstream_xchacha20poly1305_keygen();
      out = L.encryptBlob(body, key);
      delivery = { content_type: kind === 'release' ? m.content_type : 'text/plain; charset=utf-8', size: out.length, hash: L.hash(out),
        keys: { [reader.id]: L.sealKey(key, reader.boxPk), [this.person]: L.sealKey(key, this.id.boxPk) } };
    }
    const decision = {
      v: 2, type: 'decision', item_id: itemId, case_id: m.case_id, manifest_hash: L.digest(m),
      sender: { id: m.sender, fingerprint: sender.fingerprint }, decision: kind, mediator: this.person,
      decided_at: L.nowTime(), recipient: reader.id, delivery, reason,
    };
    const signature = L.sign('decision', decision, this.id.signSeed);
    const form = new FormData();
    form.append('meta', new Blob([JSON.stringify({ decision, signature })], { type: 'application/json' }));
    if (out) form.append('content', new Blob([out], { type: 'application/octet-stream' }), 'sealed.bin');
    return { plain, answer: await this.call('POST', `/v1/items/${itemId}/decision`, { body: form }) };
  }

  // The sender's view of a returned item: the mediator's signed return and its sealed note.
  async readNote(itemId) {
    const n = await this.call('GET', `/v1/items/${itemId}/note`);
    const dec = n.decision;
    const mediator = await this.enrollmentAs(dec.mediator, 'mediator');
    L.verify('decision', dec, n.decision_signature, mediator.signPk);
    if (dec.item_id !== itemId || dec.decision !== 'return' || dec.recipient !== this.person || dec.sender.id !== this.person)
      throw new VerificationError('not a return of this item to this sender');
    const me = await this.enrollment(this.person);
    if (me.fingerprint !== dec.sender.fingerprint) throw new VerificationError('sender fingerprint mismatch');
    if (!dec.delivery) return { decision: dec, mediator, plain: null };
    if (!dec.delivery.keys[this.person]) throw new VerificationError('no key for this reader');
    const blob = await this.bytes(`/v1/items/${itemId}/note/content`, dec.delivery.size);
    if (blob.length !== dec.delivery.size || L.hash(blob) !== dec.delivery.hash) throw new VerificationError('note does not match decision');
    return { decision: dec, mediator, plain: L.decryptBlob(blob, L.openKey(dec.delivery.keys[this.person], this.id)) };
  }

  // ------------------------------------------------------------ the recipient
  async readDelivery(itemId) {
    const d = await this.call('GET', `/v1/items/${itemId}/delivery`);
    const dec = d.decision;
    L.checkDocument('decision', dec);
    const mediator = await this.enrollmentAs(dec.mediator, 'mediator');
    L.verify('decision', dec, d.decision_signature, mediator.signPk);
    if (dec.item_id !== itemId || dec.decision !== 'release' || dec.recipient !== this.person || !dec.delivery?.keys[this.person])
      throw new VerificationError('decision is not a release of this item to this reader');
    const sender = await this.enrollment(dec.sender.id);
    if (sender.fingerprint !== dec.sender.fingerprint) throw new VerificationError('sender fingerprint mismatch');
    const blob = await this.bytes(`/v1/items/${itemId}/delivery/content`, dec.delivery.size);
    if (blob.length !== dec.delivery.size || L.hash(blob) !== dec.delivery.hash) throw new VerificationError('delivery does not match decision');
    const plain = L.decryptBlob(blob, L.openKey(dec.delivery.keys[this.person], this.id));
    return { decision: dec, sender, mediator, plain };
  }
  async receipt(itemId, decision) {
    const receipt = { v: 2, type: 'receipt', item_id: itemId, decision_hash: L.digest(decision), recipient: this.person, opened_at: L.nowTime() };
    const signature = L.sign('receipt', receipt, this.id.signSeed);
    return this.call('POST', `/v1/items/${itemId}/receipt`, { json: { receipt, signature } });
  }
}

// ---------------------------------------------------------------- unlocking
function passphrase(v) {
  const p = v ?? process.env.RELAY_PASSPHRASE;
  if (!p) throw new Error('a passphrase is needed (--passphrase or RELAY_PASSPHRASE)');
  return p;
}
export async function openSession(profileDir, opts) {
  const profile = loadProfile(profileDir);
  const relay = new Relay(profile);
  let personId = profile.person_id, bundle = profile.identityKey;
  if (profile.device_kind === 'terminal') {
    if (!opts.code) throw new Error('a terminal needs --code (the kiosk code)');
    personId = (await relay.call('POST', '/v1/kiosk/identify', { json: { code: opts.code } })).person_id;
    const kb = await relay.call('GET', `/v1/people/${personId}/key-bundle`);
    if (kb.person_id !== personId) throw new VerificationError('key bundle for someone else');
    bundle = L.b64decode(kb.key_bundle);
  }
  if (!bundle) throw new Error('no identity.key in the profile');
  const identity = L.openBundle(bundle, passphrase(opts.passphrase));
  const s = await relay.signIn(personId, identity);
  console.log(`signed in as ${personId} (${s.role}) on ${profile.device_kind} ${profile.device_id}; keys verified to the trust root`);
  return relay;
}

// ---------------------------------------------------------------- commands
async function main() {
  const { values: o, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      profile: { type: 'string' }, passphrase: { type: 'string' }, code: { type: 'string' },
      to: { type: 'string' }, text: { type: 'string' }, file: { type: 'string' }, case: { type: 'string' },
      tus: { type: 'boolean' }, piece: { type: 'string' }, size: { type: 'string' }, item: { type: 'string' }, 'no-receipt': { type: 'boolean' }, note: { type: 'string' }, reason: { type: 'string' }, out: { type: 'string' },
    },
  });
  const cmd = positionals[0];
  if (!cmd || cmd === 'help' || !o.profile) {
    console.log(fs.readFileSync(new URL('./README.md', import.meta.url), 'utf8'));
    return;
  }
  if (cmd === 'problems') return demoProblems(o);
  const relay = await openSession(o.profile, o);
  try {
    if (cmd === 'whoami') {
      console.log(JSON.stringify(await relay.call('GET', '/v1/me'), null, 2));
    } else if (cmd === 'send') {
      const me = await relay.call('GET', '/v1/me');
      const caseId = o.case || me.cases[0]?.id;
      if (!caseId) throw new Error('no case');
      const kase = await relay.call('GET', `/v1/cases/${caseId}`);
      let to = o.to;
      if (!to) {
        const others = kase.participants.filter((p) => p.id !== relay.person);
        if (others.length !== 1) throw new Error('say --to PERSON_ID or --to mediators');
        to = others[0].id;
      }
      if (to !== 'mediators') await relay.enrollmentAs(to, 'participant'); // a real person of this case
      const limits = await relay.call('GET', '/v1/limits');
      let text = o.file ? fs.readFileSync(o.file) : Buffer.from(o.text ?? 'Hello from the Node client.\n', 'utf8');
      if (o.size) { const line = Buffer.from('A long letter from the Node client, line after line. '); text = Buffer.alloc(Number(o.size)); for (let i = 0; i < text.length; i += line.length) line.copy(text, i); }
      const sealed = await relay.sealItem({ caseId, recipient: to, plaintext: text, contentType: 'text/plain; charset=utf-8' });
      if (sealed.blob.length > limits.max_letter_bytes) throw new Error('letter too large for this relay');
      const sent = await relay.submit(sealed, { tus: !!o.tus || sealed.blob.length > 8 * 1024 * 1024, pieceSize: o.piece ? Number(o.piece) : undefined });
      console.log(`sent ${sent.id} to ${to} (${sealed.blob.length} bytes of ciphertext${o.tus ? ', via tus' : ''}): state=${sent.state} — ${sent.status.en}`);
    } else if (cmd === 'sent') {
      for (const it of await relay.call('GET', '/v1/items/sent')) console.log(`${it.id} to ${it.recipient_id ?? 'mediators'}: ${it.state} — ${it.status.en}`);
    } else if (cmd === 'release') {
      if (relay.role !== 'mediator') throw new Error('release needs a mediator desk');
      const queue = await relay.call('GET', '/v1/review/queue');
      const todo = queue.filter((q) => (o.item ? q.id === o.item : q.state === 'pending_review' && !q.flags.held && q.screening?.outcome === 'allow'));
      if (!todo.length) console.log('nothing to release');
      for (const q of todo) {
        const { plain, answer } = await relay.release(q.id);
        console.log(`released ${q.id} (${q.sender.label} -> ${q.recipient.label}) as written: state=${answer.state}`);
        console.log(plain.toString('utf8').replace(/^/gm, '    | '));
      }
    } else if (cmd === 'return' || cmd === 'withhold') {
      if (!o.item) throw new Error('--item ITEM_ID');
      const { answer } = await relay.decide(o.item, { decision: cmd, note: o.note ?? null, reason: cmd === 'withhold' ? (o.reason ?? 'not-ready') : null });
      console.log(`${cmd} ${o.item}: state=${answer.state}`);
    } else if (cmd === 'notes') {
      for (const it of await relay.call('GET', '/v1/items/sent')) {
        if (!it.note_available) { console.log(`${it.id}: ${it.state} — ${it.status.en}`); continue; }
        const { decision, mediator, plain } = await relay.readNote(it.id);
        console.log(`${it.id}: returned by ${mediator.label ?? mediator.id} at ${decision.decided_at}; note:`);
        console.log((plain ? plain.toString('utf8') : '(no note)').replace(/^/gm, '    | '));
      }
    } else if (cmd === 'desk-inbox') {
      for (const q of await relay.call('GET', '/v1/review/inbox')) {
        const item = await relay.call('GET', `/v1/items/${q.id}`);
        const m = item.manifest;
        L.verify('manifest', m, item.signature, (await relay.enrollment(m.sender)).signPk);
        if (m.item_id !== q.id || !m.keys[relay.person]) throw new VerificationError('manifest not for this item or this mediator');
        const blob = await relay.bytes(`/v1/items/${q.id}/content`, m.size);
        if (blob.length !== m.size || L.hash(blob) !== m.hash) throw new VerificationError('content does not match manifest');
        const plain = L.decryptBlob(blob, L.openKey(m.keys[relay.person], relay.id));
        console.log(`${q.id} from ${q.sender.label} (${m.size} bytes, state ${q.state}):`);
        console.log(plain.toString('utf8').slice(0, 400).replace(/^/gm, '    | '));
      }
    } else if (cmd === 'read') {
      const inbox = await relay.call('GET', '/v1/inbox');
      console.log(`inbox: ${inbox.length} item(s)`);
      for (const it of inbox) {
        if (o.item && it.id !== o.item) continue;
        try {
          const { decision, sender, mediator, plain } = await relay.readDelivery(it.id);
          console.log(`\n${it.id} (${it.kind}) from ${sender.label ?? sender.id} [fingerprint ${sender.fingerprint.slice(0, 16)}…], released by ${mediator.label ?? mediator.id} at ${decision.decided_at}`);
          console.log(plain.toString('utf8').replace(/^/gm, '    | '));
          if (o.out) fs.writeFileSync(o.out, plain);
          if (!o['no-receipt']) {
            const r = await relay.receipt(it.id, decision);
            console.log(`receipt sent: state=${r.state}, first opened ${r.first_opened_at}`);
          }
        } catch (e) {
          if (e instanceof Problem && e.status === 404) { console.log(`${it.id}: not available now`); continue; }
          throw e;
        }
      }
    } else throw new Error(`unknown command ${cmd}`);
  } finally {
    await relay.signOut().catch(() => {});
  }
}

async function demoProblems(o) {
  const profile = loadProfile(o.profile);
  const relay = new Relay(profile);
  const tries = [
    ['no session', () => relay.call('GET', '/v1/me')],
    ['unknown route', () => relay.call('GET', '/v1/nowhere')],
    ['bad device token', () => { const r = new Relay({ ...profile, device_token: profile.device_id + '.x' }); return r.call('GET', '/v1/me'); }],
    ['login refused (wrong person)', () => relay.call('POST', '/v1/auth/challenge', { json: { person_id: 'per_0000000000000000' } })],
    ['invalid field', () => relay.call('POST', '/v1/auth/challenge', { json: { person_id: 5 } })],
    ['duplicate key', () => relay.call('POST', '/v1/auth/challenge', { body: '{"person_id":"a","person_id":"b"}', headers: { 'Content-Type': 'application/json' } })],
    ['tus without Tus-Resumable', () => relay.call('POST', '/v1/uploads', { headers: { 'Upload-Length': '10' } })],
    ['French title', () => relay.call('GET', '/v1/me', { headers: { 'Accept-Language': 'fr' } })],
  ];
  for (const [name, f] of tries) {
    process.stderr.write(`${name}: `);
    try { await f(); console.error('(no problem?)'); } catch (e) { if (e instanceof Problem) e.print(); else console.error(e.message); }
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('client.mjs')) main().catch((e) => {
  if (e instanceof Problem) { e.print(); process.exit(2); }
  if (e instanceof VerificationError) { console.error(`verification failed: ${e.message}`); process.exit(3); }
  console.error(e.stack || e.message); process.exit(1);
});
