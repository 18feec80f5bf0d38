// Envelope v2 primitives, written from docs/envelope-v2.md only.
import _sodium from 'libsodium-wrappers-sumo';
import { blake3 } from '@noble/hashes/blake3.js';
import { visit } from 'jsonc-parser';

await _sodium.ready;
export const sodium = _sodium;

export class VerificationError extends Error {}

export const MAGIC = Buffer.from([0x52, 0x4c, 0x59, 0x02]);
export const MAGIC_V1 = Buffer.from([0x52, 0x4c, 0x59, 0x01]);
export const CHUNK = 65536;
export const ENC_CHUNK = CHUNK + 17;

export const PREFIX = Object.fromEntries(
  ['manifest', 'decision', 'receipt', 'login', 'enrollment'].map((d) => [
    d, Buffer.from(`mediation-relay/v2/${d}\0`, 'ascii')]));
const DOMAIN_TYPE = { manifest: 'item', decision: 'decision', receipt: 'receipt', login: 'login', enrollment: 'enrollment' };

// ---- section 1: strict base64, hex, BLAKE3-256
export function b64decode(s, len) {
  if (typeof s !== 'string' || s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s))
    throw new VerificationError('bad base64');
  const b = Buffer.from(s, 'base64');
  if (b.toString('base64') !== s) throw new VerificationError('non-canonical base64');
  if (len !== undefined && b.length !== len) throw new VerificationError(`base64 of ${b.length} bytes, wanted ${len}`);
  return new Uint8Array(b);
}
export const b64 = (u8) => Buffer.from(u8).toString('base64');
export const hex = (u8) => Buffer.from(u8).toString('hex');
export const hash = (u8) => hex(blake3(u8));

// ---- section 6: canonical JSON
function cmpCodePoints(a, b) { return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')); }
export function canonical(value) {
  const out = [];
  const walk = (v) => {
    if (v === null) out.push('null');
    else if (v === true || v === false) out.push(String(v));
    else if (typeof v === 'number') {
      if (!Number.isSafeInteger(v)) throw new VerificationError('not a safe integer');
      out.push(String(v)); // String(-0) === "0"
    } else if (typeof v === 'string') {
      if (!v.isWellFormed()) throw new VerificationError('lone surrogate');
      out.push(JSON.stringify(v)); // escapes exactly " \\ \b \t \n \f \r and other C0 as \u00xx lowercase
    } else if (Array.isArray(v)) {
      out.push('['); v.forEach((x, i) => { if (i) out.push(','); walk(x); }); out.push(']');
    } else if (typeof v === 'object') {
      const keys = Object.keys(v).sort(cmpCodePoints);
      out.push('{');
      keys.forEach((k, i) => {
        if (!k.isWellFormed()) throw new VerificationError('lone surrogate in key');
        if (i) out.push(','); out.push(JSON.stringify(k), ':'); walk(v[k]);
      });
      out.push('}');
    } else throw new VerificationError('value not allowed in canonical JSON');
  };
  walk(value);
  return Buffer.from(out.join(''), 'utf8');
}
export const digest = (doc) => hash(canonical(doc));

// ---- section 6.1: parse received JSON: refuse duplicate names, non-integers, lone surrogates
// Answers may hold non-integer numbers outside signed documents (GET /v1/limits has
// "upload_expiry_hours": 24.0), so a fraction only taints the objects that contain it;
// checkDocument refuses a tainted document.
const TAINTED = new WeakSet();
export function parseStrict(text, { integersOnly = false } = {}) {
  const stack = [];
  const floats = [];
  let err = null;
  visit(text, {
    onObjectBegin: () => { stack.push(new Set()); },
    onObjectEnd: () => { stack.pop(); },
    onArrayBegin: () => { stack.push(null); },
    onArrayEnd: () => { stack.pop(); },
    onObjectProperty: (name) => {
      const top = stack[stack.length - 1];
      if (top.has(name)) err = err || `duplicate member name ${JSON.stringify(name)}`;
      top.add(name);
    },
    onLiteralValue: (value, offset, length, _l, _c, pathSupplier) => {
      if (typeof value === 'number') {
        const src = text.slice(offset, offset + length);
        if (/[.eE]/.test(src) || !Number.isSafeInteger(value)) {
          if (integersOnly) err = err || `number not an exact integer: ${src}`;
          floats.push(pathSupplier());
        }
      }
    },
    onError: (code, offset) => { err = err || `JSON syntax error ${code} at ${offset}`; },
  }, { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false });
  if (err) throw new VerificationError(err);
  const value = JSON.parse(text);
  const check = (v) => {
    if (typeof v === 'string') { if (!v.isWellFormed()) throw new VerificationError('lone surrogate'); }
    else if (Array.isArray(v)) v.forEach(check);
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) { check(k); check(x); }
  };
  check(value);
  for (const p of floats) { let v = value; for (const k of p) { if (v && typeof v === 'object') TAINTED.add(v); v = v?.[k]; } }
  return value;
}

// ---- section 8: documents and their shapes
const TIME_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?Z$/;
export function isTime(s) {
  if (typeof s !== 'string') return false;
  const m = TIME_RE.exec(s); if (!m) return false;
  const [y, mo, d, h, mi, se] = m.slice(1, 7).map(Number);
  const t = new Date(Date.UTC(y, mo - 1, d, h, mi, se));
  return t.getUTCFullYear() === y && t.getUTCMonth() === mo - 1 && t.getUTCDate() === d &&
    t.getUTCHours() === h && t.getUTCMinutes() === mi && t.getUTCSeconds() === se;
}
const isText = (v) => typeof v === 'string' && v.length > 0;
const isHash = (v) => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
const isSize = (v) => Number.isSafeInteger(v) && v >= 0;
const isB64 = (n) => (v) => { try { b64decode(v, n); return true; } catch { return false; } };
const isKey = isB64(32);
const isKeys = (v) => v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0 &&
  Object.entries(v).every(([k, x]) => isText(k) && isB64(80)(x));
const isNullOr = (f) => (v) => v === null || f(v);
const exactObj = (fields) => (v) => v && typeof v === 'object' && !Array.isArray(v) &&
  Object.keys(v).length === Object.keys(fields).length &&
  Object.entries(fields).every(([k, f]) => Object.hasOwn(v, k) && f(v[k]));
const SHAPES = {
  item: {
    item_id: isText, case_id: isText, kind: (v) => v === 'letter' || v === 'video', sender: isText,
    recipient: isText, created_at: isTime, content_type: isText, size: isSize, hash: isHash, keys: isKeys,
    '?poster': exactObj({ content_type: (v) => v === 'image/jpeg', size: isSize, hash: isHash }),
  },
  decision: {
    item_id: isText, case_id: isText, manifest_hash: isHash,
    sender: exactObj({ id: isText, fingerprint: isHash }),
    decision: (v) => ['release', 'return', 'withhold'].includes(v), mediator: isText, decided_at: isTime,
    recipient: isText,
    delivery: isNullOr(exactObj({ content_type: isText, size: isSize, hash: isHash, keys: isKeys })),
    reason: isNullOr(isText),
  },
  receipt: { item_id: isText, decision_hash: isHash, recipient: isText, opened_at: isTime },
  login: { challenge: (v) => isText(v) && isB64()(v), device_id: isText, person_id: isText },
  enrollment: {
    person_id: isText, role: isText, side: isNullOr(isText), sign_pk: isKey, box_pk: isKey,
    enrolled_by: isText, enrolled_at: isTime,
  },
};
export function checkDocument(type, doc) {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new VerificationError(`${type}: not an object`);
  if (TAINTED.has(doc)) throw new VerificationError(`${type}: holds a non-integer number`);
  if (doc.v === 1) throw new VerificationError(`${type}: envelope version 1 is retired`);
  if (doc.v !== 2 || doc.type !== type) throw new VerificationError(`${type}: wrong v or type`);
  const shape = SHAPES[type];
  const allowed = new Set(['v', 'type']);
  for (const [k, f] of Object.entries(shape)) {
    const opt = k.startsWith('?'); const name = opt ? k.slice(1) : k; allowed.add(name);
    if (!Object.hasOwn(doc, name)) { if (opt) continue; throw new VerificationError(`${type}: missing ${name}`); }
    if (!f(doc[name])) throw new VerificationError(`${type}: bad ${name}`);
  }
  for (const k of Object.keys(doc)) if (!allowed.has(k)) throw new VerificationError(`${type}: unknown field ${k}`);
  if (type === 'item' && doc.poster !== undefined && doc.kind !== 'video') throw new VerificationError('poster on a letter');
  if (type === 'decision') {
    if (doc.decision === 'release' && doc.delivery === null) throw new VerificationError('release without delivery');
    if (doc.decision === 'withhold' && doc.delivery !== null) throw new VerificationError('withhold with delivery');
  }
}

// ---- section 7: signatures
export function sign(domain, doc, signSeed) {
  checkDocument(DOMAIN_TYPE[domain], doc);
  const kp = sodium.crypto_sign_seed_keypair(signSeed);
  return b64(sodium.crypto_sign_detached(Buffer.concat([PREFIX[domain], canonical(doc)]), kp.privateKey));
}
export function verify(domain, doc, sigB64, signPk) {
  checkDocument(DOMAIN_TYPE[domain], doc);
  const c = canonical(doc);
  const sig = b64decode(sigB64, 64);
  if (signPk.length !== 32) throw new VerificationError('bad key');
  if (!sodium.crypto_sign_verify_detached(sig, Buffer.concat([PREFIX[domain], c]), signPk))
    throw new VerificationError(`${domain} signature does not verify`);
}

// ---- section 2: identities
export function identityFromSecrets(signSeed, boxSecret) {
  const signPk = sodium.crypto_sign_seed_keypair(signSeed).publicKey;
  const boxPk = sodium.crypto_scalarmult_base(boxSecret);
  return { signSeed, boxSecret, signPk, boxPk, fingerprint: fingerprint(signPk, boxPk) };
}
export const fingerprint = (signPk, boxPk) => hash(Buffer.concat([signPk, boxPk]));

// ---- section 3: content blobs
export function encryptBlob(plain, key) {
  const { state, header } = sodium.crypto_secretstream_xchacha20poly1305_init_push(key);
  const parts = [MAGIC, Buffer.from(header)];
  let off = 0;
  for (;;) {
    const chunk = plain.subarray(off, off + CHUNK);
    off += chunk.length;
    if (chunk.length === CHUNK) {
      parts.push(Buffer.from(sodium.crypto_secretstream_xchacha20poly1305_push(state, chunk, null,
        sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE)));
    } else {
      parts.push(Buffer.from(sodium.crypto_secretstream_xchacha20poly1305_push(state, chunk, null,
        sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL)));
      break;
    }
  }
  return Buffer.concat(parts);
}
export function decryptBlob(blob, key) {
  const bad = () => new VerificationError('blob refused');
  if (blob.length < 4 + 24 + 17 || !Buffer.from(blob.subarray(0, 4)).equals(MAGIC)) throw bad();
  let state;
  try { state = sodium.crypto_secretstream_xchacha20poly1305_init_pull(blob.subarray(4, 28), key); } catch { throw bad(); }
  const out = [];
  let off = 28;
  for (;;) {
    const rest = blob.length - off;
    const full = rest > ENC_CHUNK; // a full-size chunk is MESSAGE; anything of 17..65552 is the FINAL one
    const len = full ? ENC_CHUNK : rest;
    if (!full && (rest < 17 || rest === ENC_CHUNK)) throw bad(); // FINAL must be shorter than a full chunk
    let r;
    try { r = sodium.crypto_secretstream_xchacha20poly1305_pull(state, blob.subarray(off, off + len), null); } catch { throw bad(); }
    if (!r) throw bad();
    off += len;
    const want = full ? sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE : sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL;
    if (r.tag !== want) throw bad();
    out.push(Buffer.from(r.message));
    if (!full) break;
  }
  if (off !== blob.length) throw bad();
  return Buffer.concat(out);
}
export const ciphertextSize = (n) => 28 + Math.floor(n / CHUNK) * ENC_CHUNK + (n % CHUNK) + 17;

// ---- section 4: key wrapping
export const sealKey = (key, boxPk) => b64(sodium.crypto_box_seal(key, boxPk));
export function openKey(sealedB64, id) {
  const sealed = b64decode(sealedB64, 80);
  let k;
  try { k = sodium.crypto_box_seal_open(sealed, id.boxPk, id.boxSecret); } catch { throw new VerificationError('sealed key does not open'); }
  if (!k || k.length !== 32) throw new VerificationError('sealed key does not open');
  return k;
}

// ---- section 5: passphrase-sealed key bundle
export const OPS_MIN = 3, MEM_MIN = 268435456, OPS_MAX = 4, MEM_MAX = 1073741824;
export function openBundle(bundle, passphrase, { opsMin = OPS_MIN, memMin = MEM_MIN } = {}) {
  const b = Buffer.from(bundle);
  const bad = (why) => new VerificationError(`key bundle refused: ${why}`);
  if (b.length !== 141 || !b.subarray(0, 4).equals(Buffer.from('RLYK')) || b[4] !== 1) throw bad('layout');
  const ops = b.readBigUInt64BE(5), mem = b.readBigUInt64BE(13);
  if (ops < BigInt(opsMin) || mem < BigInt(memMin) || ops > BigInt(OPS_MAX) || mem > BigInt(MEM_MAX)) throw bad('limits');
  if (mem % 1024n !== 0n) throw bad('memlimit');
  const salt = b.subarray(21, 37), nonce = b.subarray(37, 61), box = b.subarray(61, 141);
  const key = sodium.crypto_pwhash(32, Buffer.from(passphrase.normalize('NFC'), 'utf8'), salt, Number(ops), Number(mem),
    sodium.crypto_pwhash_ALG_ARGON2ID13);
  let plain;
  try { plain = sodium.crypto_secretbox_open_easy(box, nonce, key); } catch { throw bad('wrong passphrase'); }
  return identityFromSecrets(plain.subarray(0, 32), plain.subarray(32, 64));
}

// ---- misc
export function nowTime() { return new Date().toISOString().replace(/\.\d+Z$/, 'Z'); }
export function randomId(prefix) { return `${prefix}_${hex(sodium.randombytes_buf(8))}`; }
