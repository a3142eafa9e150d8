/**
 * A decode worker of the import worker's pool (`import.pool.ts`): prepares one item at a time (decode, mask
 * check, thumbnail, SHA-256) and hands the record back; the import worker orders and stores the records.
 */
import * as Comlink from 'comlink';
import type { DecodeWireApi } from './import.pool.ts';
import { prepareItem } from './import.prepare.ts';

const api: DecodeWireApi = { prepare: prepareItem };

Comlink.expose(api);
