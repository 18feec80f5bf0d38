-- A video's poster frame for the review queue: a small ciphertext blob sealed by the sender under
-- the item's own content key (the relay cannot see it), purged with the item.
ALTER TABLE items ADD COLUMN poster_blob_id TEXT;
