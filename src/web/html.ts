/**
 * A tiny HTML template tag: every interpolated value is escaped unless it is `Html` made by this
 * tag or `raw()`. Pages are functions returning `Html`, so they type-check with the code.
 */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value
  }
}

type Value = Html | string | number | boolean | null | undefined | Value[]

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"'`=]/g, (c) => `&#${c.charCodeAt(0)};`)
}

function render(v: Value): string {
  if (v === null || v === undefined || v === false) return ''
  if (v instanceof Html) return v.value
  if (Array.isArray(v)) return v.map(render).join('')
  return escapeHtml(String(v))
}

export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  let out = strings[0]!
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1]!
  return new Html(out)
}

/** Trusted markup only (e.g. already-sanitized mail HTML). */
export function raw(s: string): Html {
  return new Html(s)
}
