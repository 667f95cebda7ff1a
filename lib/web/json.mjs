// JSON with 64-bit integers kept exact: timestamps in nanoseconds pass 2^53.

const MARK = '@@tlm-bigint:'
const MARKED = /^@@tlm-bigint:(-?\d+)@@$/

/** JSON text of `v`, with bigints written as plain integers (the node reads them exactly). */
export function stringify(v) {
  return JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? `${MARK}${x}@@` : x)).replace(/"@@tlm-bigint:(-?\d+)@@"/g, '$1')
}

/** `text` with every integer literal of 16 or more digits outside strings quoted and marked. */
function markBigIntegers(text) {
  let out = ''
  let i = 0
  let inString = false
  while (i < text.length) {
    const ch = text[i]
    if (inString) {
      out += ch
      if (ch === '\\') {
        out += text[i + 1] ?? ''
        i += 2
        continue
      }
      if (ch === '"') inString = false
      i++
      continue
    }
    if (ch === '"') {
      inString = true
      out += ch
      i++
      continue
    }
    if (ch === '-' || (ch >= '0' && ch <= '9')) {
      let j = i + 1
      while (j < text.length && /[0-9.eE+-]/.test(text[j])) j++
      const lit = text.slice(i, j)
      out += /^-?\d{16,}$/.test(lit) ? `"${MARK}${lit}@@"` : lit
      i = j
      continue
    }
    out += ch
    i++
  }
  return out
}

/**
 * Parse JSON, keeping integers beyond 2^53 exact as bigints (smaller ones stay numbers).
 * Only the marks this function adds are converted: a string that merely looks like one
 * stays a string.
 */
export function parse(text) {
  if (!/\d{16}/.test(text)) return JSON.parse(text)
  return JSON.parse(markBigIntegers(text), (_, x) => {
    if (typeof x !== 'string') return x
    const m = MARKED.exec(x)
    if (!m) return x
    const b = BigInt(m[1])
    return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b
  })
}
