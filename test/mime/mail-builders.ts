/** Raw mail built for the MIME tests. */

/** A mail with one base64 attachment of `data` (lines of 76 characters, RFC 2045 section 6.8). */
export function mailWithAttachment(data: Buffer): Buffer {
  const base64 = data.toString('base64').replace(/.{76}/g, '$&\r\n')
  return Buffer.from(
    [
      'From: Dana <dana@customer.example>',
      'To: support@example.test',
      'Subject: the scans',
      'Message-ID: <scans-1@customer.example>',
      'Date: Tue, 14 May 2024 09:30:00 +0200',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="mixed-1"',
      '',
      '--mixed-1',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'Scans attached.',
      '--mixed-1',
      'Content-Type: application/pdf; name="scans.pdf"',
      'Content-Disposition: attachment; filename="scans.pdf"',
      'Content-Transfer-Encoding: base64',
      '',
      base64,
      '--mixed-1--',
      '',
    ].join('\r\n'),
  )
}
