import sanitizeHtml from 'sanitize-html'
import type { IOptions } from 'sanitize-html'

/**
 * Mail HTML is hostile: it is shown to agents inside our portal. This keeps formatting and drops
 * everything active (PROVIDERS.md "Inbound mail hygiene"): scripts, event handlers, forms,
 * frames, `javascript:` / `vbscript:` / `data:` URLs, CSS that can run code or fetch (`expression()`,
 * `url()`, `behavior`, `-moz-binding`, `<style>` blocks), and remote images unless allowed (they
 * tell the sender when and where the mail was read). It is one layer: the portal still renders the
 * result in a sandboxed iframe with a strict CSP.
 */
export interface SanitizeMailHtmlOptions {
  /**
   * Content-ID (without angle brackets) → URL of the stored attachment, for `cid:` images
   * (RFC 2392). Looked up exactly, then case-insensitively. Unknown `cid:` images lose their src.
   */
  cidMap: Record<string, string>
  /** Keep `http(s):` images. False by default in the portal until the agent asks for them. */
  allowRemoteImages: boolean
  /** The src that replaces a blocked remote image. Default: a transparent 1×1 GIF. */
  remoteImagePlaceholder?: string
}

export interface SanitizedMailHtml {
  html: string
  /** How many remote images were replaced by the placeholder (0 when `allowRemoteImages`). */
  blockedRemoteImages: number
}

const transparentGif = 'data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7'

// Raster images only: an SVG can carry script and links of its own.
const safeDataImage = /^data:image\/(?:png|gif|jpe?g|webp|bmp);base64,[a-z0-9+/=\s]*$/i

const words = (list: string): string[] => list.trim().split(/\s+/)

const allowedTags = words(`
  a abbr address b bdi bdo big blockquote br caption center cite code col colgroup dd del details dfn
  div dl dt em figcaption figure font h1 h2 h3 h4 h5 h6 hr i img ins kbd li mark ol p pre q s samp small
  span strike strong sub summary sup table tbody td tfoot th thead time tr tt u ul var wbr
`)

// Attributes that hold URLs are limited to a[href] and img[src]; `background`, `srcset`, `cite`,
// `action`, `formaction`, `poster`, `xlink:href` and every `on*` handler are simply not listed.
const allowedAttributes: Record<string, string[]> = {
  '*': ['style', 'title', 'dir', 'lang', 'align', 'valign', 'width', 'height'],
  a: ['href', 'name', 'target', 'rel'],
  img: ['src', 'alt', 'border', 'hspace', 'vspace'],
  font: ['color', 'face', 'size'],
  table: ['border', 'cellpadding', 'cellspacing', 'bgcolor', 'summary'],
  tr: ['bgcolor'],
  td: ['colspan', 'rowspan', 'nowrap', 'bgcolor', 'abbr', 'scope'],
  th: ['colspan', 'rowspan', 'nowrap', 'bgcolor', 'abbr', 'scope'],
  col: ['span'],
  colgroup: ['span'],
  ol: ['start', 'type', 'reversed'],
  ul: ['type'],
  li: ['value'],
  blockquote: ['type'],
  del: ['datetime'],
  ins: ['datetime'],
  time: ['datetime'],
  details: ['open'],
}

// CSS values: whole-value patterns without `url(`, `expression(`, backslash escapes, comments or
// any function but rgb()/hsl(). sanitize-html drops a declaration whose value matches none, and
// drops properties that are not listed at all (background, background-image, position, behavior,
// -moz-binding, content, cursor, filter...).
const length = String.raw`-?(?:\d+|\d*\.\d+)(?:px|em|rem|%|pt|pc|ex|ch|vw|vh|vmin|vmax|cm|mm|in)?`
const lengthOrKeyword = String.raw`(?:${length}|auto|inherit|initial|normal)`
const lengths = new RegExp(String.raw`^(?:${lengthOrKeyword}\s*){1,4}$`, 'i')
const oneLength = new RegExp(String.raw`^${lengthOrKeyword}$`, 'i')
const color = String.raw`(?:#[0-9a-f]{3,8}|rgba?\(\s*[\d.%\s,/]+\)|hsla?\(\s*[\d.%\s,/deg]+\)|[a-z]{3,30})`
const colorValue = new RegExp(String.raw`^${color}$`, 'i')
const borderStyle = 'none|hidden|dotted|dashed|solid|double|groove|ridge|inset|outset|thin|medium|thick'
const borderPart = String.raw`(?:${length}|${color}|${borderStyle})`
const border = new RegExp(String.raw`^(?:${borderPart}\s*){1,4}$`, 'i')
const keyword = (list: string) => new RegExp(`^(?:${words(list).join('|')})$`, 'i')

const sides = ['top', 'right', 'bottom', 'left']
const sizeProperties = words('width height max-width min-width max-height min-height')
const boxProperties = ['margin', 'padding'].flatMap((p) => [p, ...sides.map((side) => `${p}-${side}`)])
const borderProperties = ['border', 'border-top', 'border-right', 'border-bottom', 'border-left']
const borderParts = sides.flatMap((side) => [
  `border-${side}-width`,
  `border-${side}-style`,
  `border-${side}-color`,
])

/**
 * Property → whole-value patterns. Exported for the tests that compare `filterMailStyle` with
 * sanitize-html's own filter.
 */
export const mailAllowedStyles: Readonly<Record<string, readonly RegExp[]>> = {
  color: [colorValue],
  'background-color': [colorValue],
  'font-family': [/^[\w\s,'"-]{1,200}$/],
  'font-size': [oneLength, keyword('xx-small x-small small medium large x-large xx-large smaller larger')],
  'font-weight': [keyword('normal bold bolder lighter [1-9]00')],
  'font-style': [keyword('normal italic oblique')],
  'text-align': [keyword('left right center justify start end')],
  'text-decoration': [/^(?:(?:none|underline|overline|line-through|solid|double|dotted|dashed)\s*){1,3}$/i],
  'text-transform': [keyword('none capitalize uppercase lowercase')],
  'text-indent': [oneLength],
  'vertical-align': [oneLength, keyword('baseline top middle bottom text-top text-bottom sub super')],
  'line-height': [oneLength, /^\d*\.?\d+$/],
  'letter-spacing': [oneLength],
  'white-space': [keyword('normal nowrap pre pre-wrap pre-line break-spaces')],
  'word-break': [keyword('normal break-all keep-all break-word')],
  'overflow-wrap': [keyword('normal break-word anywhere')],
  direction: [keyword('ltr rtl')],
  display: [keyword('block inline inline-block none table table-row table-cell list-item')],
  'list-style-type': [/^[a-z-]{1,30}$/i],
  'border-collapse': [keyword('collapse separate')],
  'border-spacing': [lengths],
  'border-radius': [lengths],
  'border-width': [lengths],
  'border-style': [border],
  'border-color': [/^(?:(?:#[0-9a-f]{3,8}|[a-z]{3,30})\s*){1,4}$/i],
  ...Object.fromEntries(borderProperties.map((p) => [p, [border]])),
  ...Object.fromEntries(borderParts.map((p) => [p, [border]])),
  ...Object.fromEntries(sizeProperties.map((p) => [p, [oneLength]])),
  ...Object.fromEntries(boxProperties.map((p) => [p, [lengths]])),
}

/**
 * A copy of `values` whose `indexOf` / `includes` are hash lookups. sanitize-html looks every tag
 * name up in `allowedTags` with `indexOf` (once per tag and up to three times per text node): over
 * our 70 tags that linear scan was a tenth of the sanitizer's time on a 20 KB mail. Frozen, so
 * that the index can never disagree with the contents.
 */
function indexedList(values: readonly string[]): string[] {
  const list = [...values]
  const index = new Map(list.map((value, i) => [value, i]))
  Object.defineProperties(list, {
    indexOf: { value: (value: string) => index.get(value) ?? -1 },
    includes: { value: (value: string) => index.has(value) },
  })
  return Object.freeze(list) as string[]
}

/**
 * Splits a style attribute into declarations at the `;` that are outside strings and
 * parentheses, as CSS does (CSS Syntax Level 3, section 5.4.5). Returns undefined for what we do
 * not tokenize (backslash escapes, comments, braces, brackets, an unclosed string or parenthesis):
 * the whole attribute is then dropped, as sanitize-html does when postcss cannot parse it.
 * @see https://www.w3.org/TR/css-syntax-3/#consume-list-of-declarations
 */
function splitDeclarations(style: string): string[] | undefined {
  if (/[\\{}[\]]|\/\*/.test(style)) return undefined
  const out: string[] = []
  let start = 0
  let depth = 0
  let quote = 0
  for (let i = 0; i < style.length; i++) {
    const c = style.charCodeAt(i)
    if (quote !== 0) {
      if (c === quote) quote = 0
      // CSS ends an unescaped string at a newline (a bad string): we do not guess what follows.
      else if (c === 0x0a || c === 0x0c || c === 0x0d) return undefined
      continue
    }
    if (c === 0x22 || c === 0x27) quote = c
    else if (c === 0x28) depth++
    else if (c === 0x29 && --depth < 0) return undefined
    else if (c === 0x3b && depth === 0) {
      out.push(style.slice(start, i))
      start = i + 1
    }
  }
  if (quote !== 0 || depth !== 0) return undefined
  out.push(style.slice(start))
  return out
}

const importantSuffix = /\s*!\s*important\s*$/i

/**
 * The declarations of a style attribute that pass `mailAllowedStyles`, serialized as
 * sanitize-html serializes them (`prop:value` joined by `;`, ` !important` kept). This replaces
 * sanitize-html's own style filter, which parses every attribute with postcss: a third of the
 * sanitizer's time, for values that repeat all over a mail (hence the memo below).
 *
 * The security boundary is the same as sanitize-html's: a declaration is kept only when its
 * property is listed (exact, case-sensitive name) and its whole value matches one of the
 * property's patterns, which admit no `url(`, `expression(`, escape, comment or `;`. The output is
 * rebuilt from those declarations only, so how a browser would have split the original text
 * cannot matter. Stricter than postcss in two ways, both dropping rather than keeping: property
 * hacks (`*color`, `_color`) are not unwrapped, and the attribute is dropped whole on anything
 * `splitDeclarations` does not tokenize. test/ingest/sanitize-html.test.ts checks it against
 * sanitize-html's postcss filter on generated hostile input.
 */
export function filterMailStyle(style: string): string {
  const known = styleMemo.get(style)
  if (known !== undefined) return known
  const declarations = splitDeclarations(style)
  const kept: string[] = []
  for (const declaration of declarations ?? []) {
    const colon = declaration.indexOf(':')
    if (colon < 0) continue
    const property = declaration.slice(0, colon).trim()
    if (!Object.hasOwn(mailAllowedStyles, property)) continue
    let value = declaration.slice(colon + 1).trim()
    const important = importantSuffix.exec(value)
    if (important) value = value.slice(0, important.index)
    if (!mailAllowedStyles[property]!.some((pattern) => pattern.test(value))) continue
    kept.push(`${property}:${value}${important ? ' !important' : ''}`)
  }
  const filtered = kept.join(';')
  if (style.length <= maxMemoKeyLength) {
    if (styleMemo.size >= maxMemoEntries) styleMemo.clear()
    styleMemo.set(style, filtered)
  }
  return filtered
}

// Mail clients repeat a handful of style values on every element (Outlook's
// `font-size:11.0pt;font-family:"Calibri",sans-serif`): one filter per distinct value and process.
const styleMemo = new Map<string, string>()
const maxMemoEntries = 10_000
const maxMemoKeyLength = 1_000

const allowedTagList = indexedList(allowedTags)
const nonTextTags = indexedList(
  words('script style textarea option noscript title xmp template iframe object svg math'),
)
const selfClosing = indexedList(sanitizeHtml.defaults.selfClosing)

/** The URL as a browser reads it: the WHATWG URL parser strips whitespace and control characters. */
function normalizeUrl(value: string | undefined): string {
  return (value ?? '').replace(/[\u0000-\u0020\u007f-\u009f]/g, '')
}

function lookupCid(
  cidMap: Record<string, string>,
  lowerCidMap: Map<string, string>,
  ref: string,
): string | undefined {
  let cid = ref
  try {
    cid = decodeURIComponent(ref)
  } catch {
    // keep as written
  }
  cid = cid.replace(/^<|>$/g, '')
  return Object.hasOwn(cidMap, cid) ? cidMap[cid] : lowerCidMap.get(cid.toLowerCase())
}

/**
 * Sanitizes the HTML body of a mail for display. Pure and synchronous; costs about as much as
 * parsing the HTML once, so run it when the mail is ingested or cache the result.
 */
export function sanitizeMailHtml(html: string, options: SanitizeMailHtmlOptions): SanitizedMailHtml {
  const placeholder = options.remoteImagePlaceholder ?? transparentGif
  const lowerCidMap = new Map(Object.entries(options.cidMap).map(([cid, url]) => [cid.toLowerCase(), url]))
  let blockedRemoteImages = 0

  const config: IOptions = {
    allowedTags: allowedTagList,
    allowedAttributes,
    // Styles are filtered by filterMailStyle in transformTags['*'] (same rules, without postcss).
    // sanitize-html then keeps the filtered value of the allowed `style` attribute as it is.
    parseStyleAttributes: false,
    allowedSchemes: ['http', 'https', 'mailto', 'tel'],
    // data: only reaches the output for images after the raster check in transformTags.img.
    allowedSchemesByTag: { img: ['http', 'https', 'data'] },
    allowedSchemesAppliedToAttributes: ['href', 'src', 'cite'],
    allowProtocolRelative: false,
    disallowedTagsMode: 'discard',
    // Disallowed tags whose text content is dropped too, not just the tag.
    nonTextTags,
    selfClosing,
    transformTags: {
      // Runs for every tag, after the tag's own transform below.
      '*'(tagName, attribs) {
        if (attribs.style !== undefined) {
          const style = filterMailStyle(attribs.style)
          if (style === '') delete attribs.style
          else attribs.style = style
        }
        return { tagName, attribs }
      },
      a(tagName, attribs) {
        const href = normalizeUrl(attribs.href)
        const { href: _drop, target: _target, rel: _rel, ...rest } = attribs
        // Only absolute links leave the mail; a relative or fragment link would resolve against
        // the portal itself.
        if (!/^(?:https?:\/\/|mailto:|tel:)/i.test(href)) return { tagName, attribs: rest }
        return { tagName, attribs: { ...rest, href, target: '_blank', rel: 'noopener noreferrer' } }
      },
      img(tagName, attribs) {
        const src = normalizeUrl(attribs.src)
        const { src: _drop, ...rest } = attribs
        if (/^cid:/i.test(src)) {
          const url = lookupCid(options.cidMap, lowerCidMap, src.slice(4))
          return { tagName, attribs: url === undefined ? rest : { ...rest, src: url } }
        }
        if (/^data:/i.test(src)) {
          return { tagName, attribs: safeDataImage.test(src) ? { ...rest, src } : rest }
        }
        if (/^(?:https?:)?\/\//i.test(src)) {
          if (options.allowRemoteImages) {
            return { tagName, attribs: { ...rest, src: src.startsWith('//') ? `https:${src}` : src } }
          }
          blockedRemoteImages++
          return { tagName, attribs: { ...rest, src: placeholder, title: 'Remote image blocked' } }
        }
        // Relative URLs would be fetched from the portal's own origin; anything else is unknown.
        return { tagName, attribs: rest }
      },
    },
  }
  return { html: sanitizeHtml(html, config), blockedRemoteImages }
}
