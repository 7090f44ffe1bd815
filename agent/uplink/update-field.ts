import { MAX_UPDATE_ENVELOPE_BYTES } from '../identity/update-bundle.js';

/** The `update` field of a receiver answer: base64 of at most one update envelope (docs/updates.md §4). */
export const UPDATE_FIELD_CHARS = Math.ceil(MAX_UPDATE_ENVELOPE_BYTES / 3) * 4;
