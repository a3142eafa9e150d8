/**
 * A decode worker of the import worker's pool (`import.pool.ts`): prepares one item at a time (decode, mask
 * check, thumbnail, SHA-256) and hands the record back; the import worker orders and stores the records.
 */
import * as Comlink from 'comlink';
import { oneAtATime, type DecodeWireApi } from './import.pool.ts';

// The import worker keeps several items queued here; they are prepared in turn.
const api: DecodeWireApi = { prepare: oneAtATime() };

Comlink.expose(api);
