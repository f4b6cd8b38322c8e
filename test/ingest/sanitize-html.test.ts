import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import sanitizeHtml from 'sanitize-html'
import { mailAllowedStyles, sanitizeMailHtml } from '../../src/ingest/sanitize-html.ts'
import { parseMail } from '../../src/mail/mime/parse-mail.ts'
import { loadFixture } from '../fixtures/mail/corpus.ts'

const blocked = { cidMap: {}, allowRemoteImages: false }
const newTab = 'target="_blank" rel="noopener noreferrer"'

function clean(html: string, options = blocked): string {
  return sanitizeMailHtml(html, options).html
}

/** Everything that can run code, fetch something or leave the mail, in any case. */
const dangerous = [
  /<script/i,
  /<style/i,
  /<iframe/i,
  /<svg/i,
  /<form/i,
  /<input/i,
  /\son[a-z]+\s*=/i,
  /javascript:/i,
  /vbscript:/i,
  /expression\s*\(/i,
  /url\s*\(/i,
  /data:text/i,
  /attacker\.example/i,
]

describe('sanitizeMailHtml', () => {
  it('when the hostile-html fixture is sanitized, then nothing active or remote is left and the text is kept', async () => {
    const mail = await parseMail(loadFixture('hostile-html.eml'))
    const result = sanitizeMailHtml(mail.html ?? '', {
      cidMap: { 'logo@attacker.example': '/attachments/17' },
      allowRemoteImages: false,
    })
    for (const pattern of dangerous) assert.doesNotMatch(result.html, pattern)
    assert.match(result.html, /Hello/)
    assert.match(result.html, /<img src="\/attachments\/17" \/>/)
    assert.ok(result.html.includes(`<a href="https://good.example/help" ${newTab}>help</a>`))
    assert.equal(result.blockedRemoteImages, 1)
  })

  it('when a style mixes safe and dangerous declarations, then only the safe ones stay', () => {
    assert.equal(
      clean(
        '<p style="color: red; background: url(javascript:alert(1)); ' +
          'width: expression(alert(2)); font-size: 12px">x</p>',
      ),
      '<p style="color:red;font-size:12px">x</p>',
    )
    assert.equal(clean('<p style="background-image:url(&quot;//t.example/x.png&quot;)">x</p>'), '<p>x</p>')
    assert.equal(clean('<p style="color:\\72 ed">x</p>'), '<p>x</p>')
    assert.equal(clean('<p style="-moz-binding:url(x.xml#y); behavior:url(x.htc)">x</p>'), '<p>x</p>')
    assert.equal(clean('<p style="position:fixed;top:0">x</p>'), '<p>x</p>')
    const table = '<td style="border:1px solid #ccc;padding:4px 8px">x</td>'
    assert.equal(clean(table), table)
  })

  it('when links use script or data schemes, obfuscated or not, then the href is removed', () => {
    const hrefs = [
      'javascript:alert(1)',
      ' JaVaScRiPt:alert(1)',
      'java&#x09;script:alert(1)',
      'jav&#x0A;ascript:x',
      '&#106;avascript:x',
      'vbscript:x',
      'data:text/html,<script>x</script>',
    ]
    for (const href of hrefs) {
      assert.equal(clean(`<a href="${href}">x</a>`), '<a>x</a>', href)
    }
  })

  it('when links are relative or fragments, then the href is removed (they would resolve against the portal)', () => {
    assert.equal(clean('<a href="/admin/users">x</a>'), '<a>x</a>')
    assert.equal(clean('<a href="#top">x</a>'), '<a>x</a>')
  })

  it('when links are absolute, then they open in a new tab without opener or referrer', () => {
    assert.equal(
      clean('<a href="https://example.com/a?b=1&amp;c=2" target="_self" rel="opener">x</a>'),
      `<a href="https://example.com/a?b=1&amp;c=2" ${newTab}>x</a>`,
    )
    const mailto = 'href="mailto:a@example.com"'
    assert.equal(clean(`<a ${mailto}>m</a>`), `<a ${mailto} ${newTab}>m</a>`)
  })

  it('when remote images are blocked, then they become the placeholder and are counted', () => {
    const html = '<img src="https://t.example/a.gif" alt="logo"><img src="//t.example/b.gif">'
    const result = sanitizeMailHtml(html, { ...blocked, remoteImagePlaceholder: '/static/blocked.svg' })
    assert.equal(result.blockedRemoteImages, 2)
    const placeholder = 'src="/static/blocked.svg" title="Remote image blocked"'
    assert.equal(result.html, `<img alt="logo" ${placeholder} /><img ${placeholder} />`)
  })

  it('when remote images are allowed, then they are kept and none are counted', () => {
    const result = sanitizeMailHtml('<img src="https://t.example/a.gif"><img src="//t.example/b.gif">', {
      cidMap: {},
      allowRemoteImages: true,
    })
    assert.equal(result.blockedRemoteImages, 0)
    assert.equal(result.html, '<img src="https://t.example/a.gif" /><img src="https://t.example/b.gif" />')
  })

  it('when images use cid:, then known ones map to attachment URLs and unknown ones lose their src', () => {
    const options = { cidMap: { 'Logo@Example': '/attachments/1' }, allowRemoteImages: false }
    assert.equal(clean('<img src="cid:Logo@Example">', options), '<img src="/attachments/1" />')
    assert.equal(clean('<img src="CID:logo@example">', options), '<img src="/attachments/1" />')
    assert.equal(clean('<img src="cid:other@example" alt="a">', options), '<img alt="a" />')
  })

  it('when images use data: URLs, then raster images stay and SVG or HTML are dropped', () => {
    const png = 'data:image/png;base64,iVBORw0KGgo='
    assert.equal(clean(`<img src="${png}">`), `<img src="${png}" />`)
    assert.equal(clean('<img src="data:image/svg+xml;base64,PHN2Zz4=">'), '<img />')
    assert.equal(clean('<img src="data:text/html;base64,PHNjcmlwdD4=">'), '<img />')
  })

  it('when images have relative URLs, srcset or event handlers, then those are dropped', () => {
    assert.equal(clean('<img src="/logout" srcset="https://t.example/x.png 2x" onerror="x()">'), '<img />')
  })

  it('when mail markup uses tables, fonts and basic formatting, then it is kept', () => {
    const html =
      '<table border="0" cellpadding="2" bgcolor="#ffffff"><tr><td colspan="2" align="center">' +
      '<font color="#333" face="Arial" size="2"><b>Hi</b> <i>there</i></font></td></tr></table>' +
      '<ul><li>one</li></ul><blockquote>quoted</blockquote>'
    assert.equal(clean(html), html)
  })

  it('when the HTML has a head, title, comments and conditional comments, then only body text remains', () => {
    const html =
      '<html><head><title>T</title><meta http-equiv="refresh" content="0;url=https://x"></head>' +
      '<body><!--[if mso]>x<![endif]--><p>Body</p></body></html>'
    assert.equal(clean(html), '<p>Body</p>')
  })

  it('when tables carry background attributes, then they are dropped (they load remote images)', () => {
    const html = '<table background="/b.png"><tr><td background="//t.example/c.png">x</td></tr></table>'
    assert.equal(clean(html), '<table><tr><td>x</td></tr></table>')
  })
})

/** Deterministic pseudo-random numbers (mulberry32), so that a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const attribute = (value: string) => value.replace(/&/g, '&amp;').replace(/"/g, '&quot;')
const styled = (style: string) => `<p style="${attribute(style)}">x</p>`

/** sanitize-html's own style filter (postcss), with our rules: what filterMailStyle replaces. */
function reference(style: string): string {
  return sanitizeHtml(styled(style), {
    allowedTags: ['p'],
    allowedAttributes: { p: ['style'] },
    allowedStyles: { '*': mailAllowedStyles as Record<string, RegExp[]> },
    parseStyleAttributes: true,
  })
}

/** The declarations our sanitizer kept in `<p style="...">`, '' when it dropped the attribute. */
function keptStyle(style: string): string {
  const out = clean(styled(style))
  const match = /^<p(?: style="([^"]*)")?>x<\/p>$/.exec(out)
  assert.ok(match, `unexpected output for ${JSON.stringify(style)}: ${out}`)
  return (match[1] ?? '').replace(/&quot;/g, '"').replace(/&amp;/g, '&')
}

describe('sanitizeMailHtml style filter against sanitize-html with postcss', () => {
  const allowed = Object.keys(mailAllowedStyles)
  const validValues: Record<string, string[]> = {
    color: ['red', '#1f1f1f', 'rgb(34, 34, 34)', 'RGBA(0,0,0,0.5)', 'hsl(120deg, 50%, 50%)'],
    'background-color': ['#fff', 'yellow', 'rgb(255,255,255)'],
    'font-family': ['Calibri, sans-serif', '"Segoe UI", Arial', "'Times New Roman'", 'Arial,Helvetica,sans-serif'],
    'font-size': ['11pt', '12px', 'small', '1.2em', '110%'],
    'font-weight': ['bold', '700', 'normal'],
    'text-align': ['center', 'left'],
    'line-height': ['1.5', '18px', 'normal'],
    margin: ['0', '0 0 10px 0', '1em auto'],
    padding: ['2px 6px', '0'],
    border: ['1px solid #ccc', 'none', '2px dashed red'],
    'border-collapse': ['collapse'],
    width: ['100%', '600px', 'auto'],
    display: ['block', 'none', 'inline-block'],
    'text-decoration': ['underline', 'none'],
  }
  const separators = [':', ': ', ' : ', ':\n  ']
  const joiners = [';', '; ', ';\n', ' ; ']

  it('when well-formed styles from mail clients are filtered, then the result is the one sanitize-html gives', () => {
    const next = random(20240514)
    const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)]!
    const properties = Object.keys(validValues)
    for (let n = 0; n < 2_000; n++) {
      const declarations: string[] = []
      const count = 1 + Math.floor(next() * 5)
      for (let i = 0; i < count; i++) {
        // A few properties and values that are not allowed, as real mail has them (mso-*, position...).
        const property = next() < 0.2 ? pick(['mso-line-height-rule', 'position', 'cursor', 'float']) : pick(properties)
        const value = validValues[property]
          ? pick(validValues[property]!)
          : pick(['exactly', 'absolute', 'url(x.png)', 'pointer', 'left'])
        declarations.push(`${property}${pick(separators)}${value}${next() < 0.1 ? ' !important' : ''}`)
      }
      const style = declarations.join(pick(joiners)) + (next() < 0.3 ? ';' : '')
      const want = reference(style)
      assert.equal(clean(styled(style)), want, `style ${JSON.stringify(style)}`)
    }
  })

  it('when hostile styles are filtered, then every declaration kept is one sanitize-html keeps on its own and nothing active survives', () => {
    const next = random(7)
    const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)]!
    const properties = [
      ...allowed,
      ...['background', 'background-image', 'behavior', '-moz-binding', 'position', '*color', '_width'],
      ...['COLOR', 'Color', 'list-style', 'content', '@import'],
    ]
    // Values the tokenizer reads (attacks included) ...
    const values = [
      'red', '#fff', '12px', '1px solid #ccc', 'Arial', '"a;b"', "'x'", 'calc(1px + 2px)', 'rgb(1,2,3)', '"url(x)"',
      'url(javascript:alert(1))', 'url("//t.example/x.png")', 'expression(alert(1))', 'EXPRESSION(alert(2))', 'javascript:alert(3)',
      '!important', '! important', '!IMPORTANT', 'url(x.htc)', 'binding', ':', '&quot;', '<', '>', 'red\n', '\t', '\u00a0', '0',
      '-1px', '1e3px', 'inherit', 'red!important', 'rgb(1;2;3)', '(a;b)',
    ]
    // ... and what makes it drop the whole attribute: escapes, comments, braces, brackets, unclosed strings.
    const fatal = ['\\72 ed', 'r\\65 d', '/* c */', '/*', '*/', '}', '{', '} p {color:red', '[', ']', '"unclosed', "'unclosed"]
    fatal.push('(', ')', 'rgb(1,2,3')
    const pieces = [':', ';', ' ', '"', "'", '(', ')', '\\', '/*', '*/', '!', '{', '}']
    const validProperties = Object.keys(validValues)
    let keptDeclarations = 0
    for (let n = 0; n < 3_000; n++) {
      const parts: string[] = []
      const count = 1 + Math.floor(next() * 6)
      for (let i = 0; i < count; i++) {
        // Half of it plausible, so that the filter has something to keep next to the attacks.
        const property = next() < 0.5 ? pick(validProperties) : pick(properties)
        const value = next() < 0.5 && validValues[property] ? pick(validValues[property]!) : pick(values)
        parts.push(`${property}${pick([':', ' :', ': ', '', '::'])}${value}${next() < 0.3 ? pick(values) : ''}`)
        if (next() < 0.1) parts.push(pick(pieces))
      }
      if (next() < 0.15) parts.splice(Math.floor(next() * (parts.length + 1)), 0, pick(fatal))
      const style = parts.join(next() < 0.8 ? pick([';', '; ', ';;']) : pick([' ', '']))
      const kept = keptStyle(style)
      if (kept === '') continue
      keptDeclarations += kept.split(';').length
      const active = /url\s*\(|expression\s*\(|javascript:|behavior\s*:|-moz-binding|\\|\/\*|[{}<>]/i
      assert.doesNotMatch(kept, active, `style ${JSON.stringify(style)} kept ${kept}`)
      for (const declaration of kept.split(';')) {
        const why = `style ${JSON.stringify(style)}: ${declaration} is not kept by sanitize-html`
        assert.equal(reference(declaration), styled(declaration), why)
      }
    }
    // The generator must keep producing styles with something to keep, or this test checks nothing.
    assert.ok(keptDeclarations > 500, `only ${keptDeclarations} declarations kept`)
  })

  it('when a quoted font name contains a semicolon or a url(), then it is not split into declarations', () => {
    assert.equal(keptStyle('font-family: "a;background:url(javascript:x)"; color: red'), 'color:red')
    assert.equal(keptStyle("font-family: 'x;behavior:url(y.htc)'"), '')
  })

  it('when a style has a comment, an escape, a brace or an unclosed string, then the whole attribute is dropped', () => {
    const styles = ['color: red; /* x */', 'color: red; width: 1\\30 px', 'color: red} p {width: 1px']
    styles.push('color: red; font-family: "Arial', 'color: rgb(1,2,3')
    for (const style of styles) {
      assert.equal(keptStyle(style), '', style)
    }
  })

  it('when a property is written in upper case or with an IE hack, then it is dropped', () => {
    assert.equal(keptStyle('COLOR: red; *width: 10px; _height: 5px; color: blue'), 'color:blue')
  })
})

