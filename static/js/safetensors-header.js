// safetensors-header.js — reads only the header of a .safetensors file the user picked or dropped (File.slice: the
// first 8 bytes give the header's length n, little-endian, then bytes 8..8+n hold its JSON). A multi-GB file costs
// two small reads and its weights never leave the machine. Used by "Open checkpoint" (checkpoint.js) and
// "Open LoRA" (lora.js), which also needs where the tensor data start.

import { bytes } from './format.js';
import { MAX_HEADER_BYTES } from './limits.js';

/** A file the page refuses before asking the server; the message says why, in words. */
export class HeaderError extends Error {}

/**
 * {text, dataStart}: the header's JSON text and the byte offset where the tensor data begin (8 + n). Refuses what
 * cannot be a safetensors file (a pickle, too short, an absurd or impossible length) with a HeaderError; whether
 * the text is a valid header is for the server to say.
 */
export async function readHeader(file) {
  if (/\.(ckpt|pt|pth|bin)$/i.test(file.name ?? '')) {
    throw new HeaderError(
      'this is a PyTorch pickle, which the page does not open; run `sdunet-explorer inspect FILE` ' +
        '(or `sdunet-explorer serve --weights FILE`) to read it on your machine',
    );
  }
  if (file.size < 8) {
    throw new HeaderError(`the file is ${file.size} bytes long; a safetensors file starts with an 8-byte header length`);
  }
  const n = new DataView(await file.slice(0, 8).arrayBuffer()).getBigUint64(0, true); // little-endian u64
  if (n === 0n) throw new HeaderError('the header length is 0: this is not a safetensors file');
  // The server reads headers up to its limit (a real one is far smaller: SDXL's is about 200 kB).
  if (MAX_HEADER_BYTES != null && n > BigInt(MAX_HEADER_BYTES)) {
    throw new HeaderError(
      `the first 8 bytes give a header length of ${n.toLocaleString('en-US')} bytes, over the server's limit of ` +
        `${bytes(MAX_HEADER_BYTES)}: this is not a safetensors file`,
    );
  }
  if (n > BigInt(file.size - 8)) {
    throw new HeaderError(
      `the header length ${n.toLocaleString('en-US')} bytes is more than the file holds after it ` +
        `(${(file.size - 8).toLocaleString('en-US')} bytes): the file is truncated or not safetensors`,
    );
  }
  const dataStart = 8 + Number(n);
  const raw = await file.slice(8, dataStart).arrayBuffer();
  // Not fatal on bad UTF-8: the server answers with its own reason for text that is not a header.
  return { text: new TextDecoder('utf-8').decode(raw), dataStart };
}

/** The header's JSON text alone (see readHeader). */
export async function readHeaderText(file) {
  return (await readHeader(file)).text;
}
