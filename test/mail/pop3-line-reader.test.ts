import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  DotBodyDecoder,
  MAX_LINE_BYTES,
  Pop3FramingError,
  Pop3ResponseReader,
} from '../../src/mail/pop3/line-reader.ts'
import { dotStuff } from '../fakes/fake-pop3-server.ts'

/** Feeds `wire` to a fresh decoder in the given pieces; returns the body and what followed the terminator. */
function decode(pieces: Buffer[]): { body: Buffer; rest: Buffer } {
  const decoder = new DotBodyDecoder()
  const rest: Buffer[] = []
  for (const piece of pieces) {
    // Once the terminator was seen, feed() hands every later byte back.
    const after = decoder.feed(piece)
    if (after !== undefined) rest.push(after)
  }
  assert.ok(decoder.done, 'terminator not found')
  return { body: decoder.result(), rest: Buffer.concat(rest) }
}

const tricky = Buffer.from(
  [
    '.starts with a dot',
    '..two dots',
    '.',
    'x.',
    '',
    '.\ttab',
    'end.\r\n.not the end',
    '...',
    'last line',
    '',
  ].join('\r\n'),
  'latin1',
)

describe('DotBodyDecoder', () => {
  it('when the body has lines starting with ".", then the decoded body is byte-exact, CRLF kept', () => {
    const wire = dotStuff(tricky)
    const { body, rest } = decode([Buffer.concat([wire, Buffer.from('+OK next\r\n')])])
    assert.deepEqual(body, tricky)
    assert.equal(rest.toString(), '+OK next\r\n')
  })

  it('when the wire is cut at every possible pair of positions, then the result never changes', () => {
    const wire = Buffer.concat([dotStuff(tricky), Buffer.from('TAIL')])
    for (let i = 0; i <= wire.length; i++) {
      for (let j = i; j <= wire.length; j += 3) {
        const { body, rest } = decode([wire.subarray(0, i), wire.subarray(i, j), wire.subarray(j)])
        assert.deepEqual(body, tricky, `cut at ${i},${j}`)
        assert.equal(rest.toString('latin1'), 'TAIL', `rest when cut at ${i},${j}`)
      }
    }
  })

  it('when fed one byte at a time, then it decodes the same body', () => {
    const wire = dotStuff(tricky)
    const { body } = decode([...wire].map((byte) => Buffer.from([byte])))
    assert.deepEqual(body, tricky)
  })

  it('when the body is empty, then the terminator alone gives an empty Buffer', () => {
    const { body, rest } = decode([Buffer.from('.\r\nX')])
    assert.equal(body.length, 0)
    assert.equal(rest.toString(), 'X')
  })

  it('when a line is ".\\r" followed by something else than LF, then only the stuffed dot is removed', () => {
    const { body } = decode([Buffer.from('a\r\n.\rb\r\n.\r\n')])
    assert.equal(body.toString('latin1'), 'a\r\n\rb\r\n')
  })

  it('when the body is large, then it is decoded exactly (and quickly enough to run in a unit test)', () => {
    const line = Buffer.from('.a line that starts with a dot and is long enough to matter in bulk\r\n')
    const message = Buffer.concat(Array.from({ length: 200_000 }, () => line))
    const wire = dotStuff(message)
    const pieces: Buffer[] = []
    for (let i = 0; i < wire.length; i += 65_536) pieces.push(wire.subarray(i, i + 65_536))
    const { body } = decode(pieces)
    assert.equal(body.length, message.length)
    assert.ok(body.equals(message))
  })
})

describe('Pop3ResponseReader', () => {
  it('when lines arrive in pieces, then each is returned whole, CRLF or bare LF removed', () => {
    const reader = new Pop3ResponseReader()
    reader.push(Buffer.from('+OK hel'))
    assert.equal(reader.nextLine(), undefined)
    reader.push(Buffer.from('lo\r\n-ERR no\n+ '))
    assert.equal(reader.nextLine(), '+OK hello')
    assert.equal(reader.nextLine(), '-ERR no')
    assert.equal(reader.nextLine(), undefined)
    reader.push(Buffer.from('\r\n'))
    assert.equal(reader.nextLine(), '+ ')
  })

  it('when a status line is followed by a body and another response in one chunk, then all three come out in order', () => {
    const reader = new Pop3ResponseReader()
    const body = dotStuff(Buffer.from('.hi\r\n'))
    reader.push(Buffer.concat([Buffer.from('+OK 5 octets\r\n'), body, Buffer.from('+OK done\r\n')]))
    assert.equal(reader.nextLine(), '+OK 5 octets')
    reader.beginBody()
    assert.equal(reader.takeBody()?.toString(), '.hi\r\n')
    assert.equal(reader.nextLine(), '+OK done')
  })

  it('when the body has not ended yet, then takeBody waits for more input', () => {
    const reader = new Pop3ResponseReader()
    reader.push(Buffer.from('+OK\r\nabc\r\n'))
    assert.equal(reader.nextLine(), '+OK')
    reader.beginBody()
    assert.equal(reader.takeBody(), undefined)
    reader.push(Buffer.from('.\r\n'))
    assert.equal(reader.takeBody()?.toString(), 'abc\r\n')
  })

  it('when a server sends a huge line without a line end, then the reader refuses it', () => {
    const reader = new Pop3ResponseReader()
    reader.push(Buffer.alloc(MAX_LINE_BYTES + 1, 0x61))
    assert.throws(() => reader.nextLine(), Pop3FramingError)
  })
})
