import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { sanitizeMailHtml } from '../../src/ingest/sanitize-html.ts'
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
