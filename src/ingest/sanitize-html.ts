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

const allowedStyles: Record<string, RegExp[]> = {
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
    allowedTags,
    allowedAttributes,
    allowedStyles: { '*': allowedStyles },
    parseStyleAttributes: true,
    allowedSchemes: ['http', 'https', 'mailto', 'tel'],
    // data: only reaches the output for images after the raster check in transformTags.img.
    allowedSchemesByTag: { img: ['http', 'https', 'data'] },
    allowedSchemesAppliedToAttributes: ['href', 'src', 'cite'],
    allowProtocolRelative: false,
    disallowedTagsMode: 'discard',
    // Disallowed tags whose text content is dropped too, not just the tag.
    nonTextTags: words('script style textarea option noscript title xmp template iframe object svg math'),
    transformTags: {
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
