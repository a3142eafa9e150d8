/**
 * Moves a model's initializers into an ONNX external-data file, as exporters do for models above protobuf's
 * 2 GB limit (`onnx.save_model(..., save_as_external_data=True)`): each tensor's bytes go to `location` at an
 * aligned offset and the graph keeps `external_data` entries (location, offset, length) with
 * `data_location = EXTERNAL`. Lets a tiny model exercise the external-data path end to end.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
const EXTERNAL = 1;
/** Offsets aligned like onnx's writer, so a runtime may map them. */
const ALIGN = 64;

export function toExternalData(
  bytes: Uint8Array,
  location: string,
  minBytes = 0,
): { model: Uint8Array; data: Uint8Array } {
  const m = onnx.ModelProto.decode(bytes);
  const parts: { offset: number; raw: Uint8Array }[] = [];
  let end = 0;
  for (const t of m.graph?.initializer ?? []) {
    const raw = t.rawData;
    if (!raw || raw.length < minBytes) continue;
    const offset = Math.ceil(end / ALIGN) * ALIGN;
    parts.push({ offset, raw });
    end = offset + raw.length;
    t.rawData = new Uint8Array(0);
    t.dataLocation = EXTERNAL;
    t.externalData = [
      { key: 'location', value: location },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(raw.length) },
    ];
  }
  const data = new Uint8Array(end);
  for (const p of parts) data.set(p.raw, p.offset);
  return { model: onnx.ModelProto.encode(m).finish(), data };
}
