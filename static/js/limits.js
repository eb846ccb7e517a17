// limits.js — the limits the server enforces, as it wrote them into the page (<meta name="sdunet-limits">), so
// the page can refuse early with the same numbers: the largest image side and the largest checkpoint header.

function read() {
  try {
    return JSON.parse(document.querySelector('meta[name="sdunet-limits"]')?.content ?? '{}');
  } catch {
    return {};
  }
}

const LIMITS = Object.freeze(read());

/** Pixels per side the server traces at most (null: unknown, the server will say). */
export const MAX_IMAGE_SIZE = LIMITS.max_image_size ?? null;
/** Bytes of a checkpoint header the server reads at most (null: unknown). */
export const MAX_HEADER_BYTES = LIMITS.max_header_bytes ?? null;
