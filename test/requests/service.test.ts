import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { RequestService } from '../../src/requests/service.ts'
import { attachmentHeaders, contentDisposition } from '../../src/requests/downloads.ts'
import { formatAddress } from '../../src/requests/addresses.ts'
import { isAppError } from '../../src/shared/errors.ts'
import { dialects } from '../support/dialects.ts'
import { insertServer, mail, raw, startPipelineWorld } from '../pipeline/support.ts'
import type { PipelineWorld } from '../pipeline/support.ts'

describe('attachment download headers', () => {
  it('when a name is not ASCII, then filename* carries it exactly and filename an ASCII fallback (RFC 6266)', () => {
    assert.equal(
      contentDisposition('attachment', 'Rechnung März (final).pdf'),
      `attachment; filename="Rechnung M_rz (final).pdf"; filename*=UTF-8''Rechnung%20M%C3%A4rz%20%28final%29.pdf`,
    )
  })

  it('when a name holds quotes, backslashes or percent signs, then the fallback cannot break out of its quotes', () => {
    const value = contentDisposition('attachment', 'a"b\\c%41.txt')
    assert.equal(value, `attachment; filename="a_b_c_41.txt"; filename*=UTF-8''a%22b%5Cc%2541.txt`)
  })

  it('when an attachment is HTML, SVG or unknown, then it is served as a download of octet-stream; raster images are shown', () => {
    for (const type of ['text/html', 'image/svg+xml', 'application/x-msdownload', 'text/plain']) {
      const h = attachmentHeaders({ filename: 'x', contentType: type })
      assert.equal(h.contentType, 'application/octet-stream', type)
      assert.match(h.contentDisposition, /^attachment;/, type)
    }
    assert.deepEqual(attachmentHeaders({ filename: 'p.jpg', contentType: 'image/JPG' }).contentType, 'image/jpeg')
    assert.match(attachmentHeaders({ filename: 'p.png', contentType: 'image/png' }).contentDisposition, /^inline;/)
    assert.match(attachmentHeaders({ filename: 'p.png', contentType: 'image/png' }, { forceDownload: true }).contentDisposition, /^attachment;/)
  })

  it('when an address is formatted, then names with specials are quoted and escaped (RFC 5322 3.4)', () => {
    assert.equal(formatAddress({ address: 'a@b.example', name: '' }), 'a@b.example')
    assert.equal(formatAddress({ address: 'a@b.example', name: 'Anna Schmidt' }), 'Anna Schmidt <a@b.example>')
    assert.equal(formatAddress({ address: 'a@b.example', name: 'Schmidt, Anna "AS"' }), '"Schmidt, Anna \\"AS\\"" <a@b.example>')
  })
})

for (const dialect of dialects) {
  describe(`request service on ${dialect}`, () => {
    let world: PipelineWorld
    let service: RequestService
    let sales: Awaited<ReturnType<typeof insertServer>>

    before(async () => {
      world = await startPipelineWorld(dialect)
      service = new RequestService({ storage: world.storage, parse: (r) => world.pipeline.parse(r) })
      sales = await insertServer(world.storage, { email: 'sales@example.test', name: 'Sales' })
      const batch = Array.from({ length: 7 }, (_, i) => raw(mail({ from: `Customer ${i} <c${i}@customer.example>`, subject: `Support question ${i}` })))
      await world.pipeline.ingestBatch(world.server, batch)
      await world.pipeline.ingestBatch(sales, [raw(mail({ subject: 'Sales 100%_off question' })), raw(mail({ subject: 'Ignored', headers: { 'X-Autoreply': 'yes' } }))])
    })
    after(async () => {
      await world.cleanup()
    })

    it('when requests are listed, then the newest activity comes first, with paging and filters', async () => {
      const all = await service.list({ pageSize: 3 })
      assert.equal(all.total, 8)
      assert.equal(all.items.length, 3)
      assert.equal(all.pageSize, 3)
      const last = await service.list({ pageSize: 3, page: 3 })
      assert.equal(last.items.length, 2)
      const seen = new Set([...(await service.list({ pageSize: 3, page: 1 })).items, ...(await service.list({ pageSize: 3, page: 2 })).items, ...last.items].map((r) => r.id))
      assert.equal(seen.size, 8, 'pages do not overlap')
      const bySales = await service.list({ serverId: sales.id })
      assert.deepEqual(bySales.items.map((r) => r.subject), ['Sales 100%_off question'])
      assert.equal(bySales.items[0]!.serverName, 'Sales')
      assert.equal(bySales.items[0]!.messageCount, 1)
      await service.setStatus(bySales.items[0]!.id, 'closed')
      assert.equal((await service.list({ status: 'closed' })).total, 1)
      assert.equal((await service.list({ status: 'open' })).total, 7)
    })

    it('when a status is not one of the four, or the request does not exist, then setStatus refuses', async () => {
      const [r] = (await service.list({ pageSize: 1 })).items
      await assert.rejects(service.setStatus(r!.id, 'deleted' as never), (err) => isAppError(err, 'request_status_invalid'))
      await assert.rejects(service.setStatus(987654, 'open'), (err) => isAppError(err, 'request_not_found'))
      await assert.rejects(service.get(987654), (err) => isAppError(err, 'request_not_found'))
    })

    it('when the audit is searched, then LIKE wildcards in the search are literal and the outcome filter applies', async () => {
      assert.equal((await service.audit({ search: '100%_off' })).total, 1)
      assert.equal((await service.audit({ search: '0%_o' })).total, 1)
      assert.equal((await service.audit({ search: '%' })).total, 1)
      assert.equal((await service.audit({ search: 'C3@CUSTOMER' })).total, 1)
      assert.equal((await service.audit({ outcome: 'ignored' })).total, 1)
      assert.equal((await service.audit({ serverId: world.server.id })).total, 7)
      const entry = (await service.audit({ outcome: 'ignored' })).items[0]!
      assert.equal(entry.serverName, 'Sales')
      assert.deepEqual(await service.auditEntry(entry.id), entry)
    })

    it('when the stats per server are read, then they count today\'s messages, the last arrival and the quarantine', async () => {
      const stats = await service.serverStats()
      const support = stats.find((s) => s.serverId === world.server.id)!
      assert.equal(support.messagesToday, 7)
      assert.ok(support.lastReceivedAt && Date.now() - support.lastReceivedAt < 60_000)
      assert.equal(support.quarantined, 0)
      const salesStats = stats.find((s) => s.serverId === sales.id)!
      assert.equal(salesStats.messagesToday, 2)
      const tomorrow = new RequestService({ storage: world.storage, parse: (r) => world.pipeline.parse(r), clock: () => Date.now() + 86_400_000 })
      assert.equal((await tomorrow.serverStats([world.server.id]))[0]!.messagesToday, 0)
    })
  })
}
