// Checks lib.mjs against the envelope-v2 test vectors (a JSON file; path as argument).
import fs from 'node:fs';
import * as L from './lib.mjs';

const path = process.argv[2] || new URL('../../tests/vectors/envelope-v2.json', import.meta.url).pathname;
const text = fs.readFileSync(path, 'utf8');
const V = JSON.parse(text);
const H = (h) => new Uint8Array(Buffer.from(h, 'hex'));
let ok = 0, bad = 0;
const t = (name, f) => { try { if (f() === false) throw new Error('false'); ok++; } catch (e) { bad++; console.log('FAIL', name, e.message); } };

for (const c of V.blake3_256) t(`blake3 ${c.input_hex.length / 2}`, () => L.hash(H(c.input_hex)) === c.hash);
for (const c of V.canonical_json.valid) t(`canon ${c.name}`, () => L.canonical(c.input).toString('hex') === c.canonical_utf8_hex && L.digest(c.input) === c.blake3_256);
// The invalid inputs must be read from the raw text (JSON.parse turns 1.0 into 1).
for (const c of V.canonical_json.invalid) t(`canon-invalid ${c.name}`, () => {
  const i = text.indexOf(JSON.stringify(c.name).slice(0, -1));
  const m = /"input":\s*(\{.*?\})\s*\}/s.exec(text.slice(i));
  try { L.canonical(L.parseStrict(m[1], { integersOnly: true })); return false; } catch (e) { return e instanceof L.VerificationError; }
});
t('dup names refused', () => { try { L.parseStrict('{"a":1,"b":{"c":1,"c":2}}'); return false; } catch { return true; } });
const ids = Object.fromEntries(Object.entries(V.identities).map(([k, v]) => [k, L.identityFromSecrets(H(v.sign_seed_hex), H(v.box_secret_hex))]));
for (const [k, v] of Object.entries(V.identities)) t(`identity ${k}`, () => L.hex(ids[k].signPk) === v.sign_pk_hex && L.hex(ids[k].boxPk) === v.box_pk_hex && ids[k].fingerprint === v.fingerprint);
for (const s of V.signatures) t(`sig ${s.domain}`, () => {
  const d = s.domain.toLowerCase();
  const seed = ids[s.signer].signSeed;
  return L.canonical(s.document).toString('hex') === s.canonical_utf8_hex && L.digest(s.document) === s.digest &&
    L.sign(d, s.document, seed) === s.signature_b64 && (L.verify(d, s.document, s.signature_b64, ids[s.signer].signPk), true);
});
const ss = V.secretstream; const blobs = {};
for (const c of ss.cases) t(`stream ${c.name}`, () => {
  let blob = c.blob_hex ? H(c.blob_hex) : null;
  if (!blob) blob = new Uint8Array(Buffer.concat([Buffer.from(blobs[c.blob_shares_prefix_with].subarray(0, c.shared_prefix_length)), Buffer.from(c.blob_tail_hex, 'hex')]));
  blobs[c.plaintext_size] = blob; blobs[c.name] = blob;
  const plain = Buffer.from(Array.from({ length: c.plaintext_size }, (_, i) => i % 251));
  return blob.length === c.blob_size && L.hash(blob) === c.blob_blake3_256 && L.ciphertextSize(c.plaintext_size) === c.blob_size &&
    L.decryptBlob(blob, H(ss.key_hex)).equals(plain);
});
for (const c of ss.invalid) t(`stream-invalid ${c.name}`, () => {
  let blob = c.blob_hex !== undefined ? Buffer.from(c.blob_hex, 'hex') : Buffer.from(blobs[c.base]);
  let key = H(ss.key_hex);
  if (c.op === 'truncate') blob = blob.subarray(0, c.length);
  if (c.op === 'flip_bit') blob[c.bit >> 3] ^= 1 << (c.bit % 8);
  if (c.op === 'append_hex') blob = Buffer.concat([blob, Buffer.from(c.hex, 'hex')]);
  if (c.op === 'use_key') key = H(c.key_hex);
  try { L.decryptBlob(new Uint8Array(blob), key); return false; } catch (e) { return e instanceof L.VerificationError; }
});
t('sealed key', () => Buffer.from(L.openKey(V.sealed_key.sealed_b64, ids[V.sealed_key.recipient])).toString('hex') === V.sealed_key.content_key_hex);
const kb = V.key_bundle;
for (const p of [kb.passphrase, kb.passphrase_nfd]) t('key bundle', () => L.openBundle(H(kb.bundle_hex), p, { opsMin: 1, memMin: 8192 }).fingerprint === ids[kb.identity].fingerprint);
t('key bundle refused with production minimums', () => { try { L.openBundle(H(kb.bundle_hex), kb.passphrase); return false; } catch { return true; } });
// 10.1: the exchange
const X = V.exchange;
t('exchange', () => {
  const pk = {};
  for (const [who, e] of Object.entries(X.enrollments)) {
    const signer = e.document.enrolled_by === e.document.person_id ? ids[X.trust_root].signPk : ids[X.trust_root].signPk;
    L.verify('enrollment', e.document, e.signature_b64, signer);
    pk[e.document.person_id] = { signPk: L.b64decode(e.document.sign_pk, 32), boxPk: L.b64decode(e.document.box_pk, 32) };
  }
  const m = X.item.manifest;
  L.verify('manifest', m, X.item.signature_b64, pk[m.sender].signPk);
  const blob = H(X.item.blob_hex);
  if (blob.length !== m.size || L.hash(blob) !== m.hash) return false;
  const k = L.openKey(m.keys[X.person_ids.mediator], ids.mediator);
  if (L.decryptBlob(blob, k).toString('utf8') !== X.item.plaintext_utf8) return false;
  const d = X.release.decision;
  L.verify('decision', d, X.release.signature_b64, pk[d.mediator].signPk);
  if (d.manifest_hash !== L.digest(m)) return false;
  if (d.sender.id !== m.sender || d.sender.fingerprint !== L.fingerprint(pk[m.sender].signPk, pk[m.sender].boxPk)) return false;
  const db = H(X.release.blob_hex);
  if (db.length !== d.delivery.size || L.hash(db) !== d.delivery.hash) return false;
  const k2 = L.openKey(d.delivery.keys[d.recipient], ids.recipient);
  if (L.decryptBlob(db, k2).toString('utf8') !== X.release.plaintext_utf8) return false;
  const r = X.receipt.document;
  L.verify('receipt', r, X.receipt.signature_b64, pk[r.recipient].signPk);
  return r.decision_hash === L.digest(d);
});
console.log(`${ok} passed, ${bad} failed`);
process.exit(bad ? 1 : 0);
