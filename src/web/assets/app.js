// deskmail portal behaviour: progressive enhancement only (every form works without script).
document.addEventListener('click', (event) => {
  const button = event.target.closest('button.copy')
  if (!button) return
  const target = document.querySelector(button.dataset.copy)
  if (!target) return
  const text = 'value' in target ? target.value : target.textContent
  navigator.clipboard?.writeText(text.trim()).then(
    () => { button.textContent = 'Copied' },
    () => { if (target.select) target.select() },
  )
})

// Add/Edit Email Server: provider presets, authentication sections, Google client JSON upload.
const serverForm = document.getElementById('server-form')
if (serverForm) {
  const presets = JSON.parse(serverForm.dataset.presets || '[]')
  const direction = serverForm.dataset.direction
  const $ = (name) => serverForm.elements.namedItem(name)
  const protocol = () => (direction === 'outgoing' ? 'smtp' : $('protocol').value)

  let previous = presets.find((p) => p.id === $('provider')?.value)
  const applyPreset = () => {
    const preset = presets.find((p) => p.id === $('provider').value)
    const before = previous
    previous = preset
    if (!preset) return
    showProviderOnly()
    if (preset.id === 'custom') {
      // Custom: the admin types everything; clear what the previous preset filled in, keep what they typed.
      if (!before) return
      const filled = { authorization_url: before.authorizationUrl, token_url: before.tokenUrl, revocation_url: before.revocationUrl || '', scope: before.scopes[protocol()] }
      for (const [name, value] of Object.entries(filled)) if ($(name).value === value) $(name).value = ''
      return
    }
    const tenant = ($('tenant')?.value || '').trim() || (preset.tenant && preset.tenant.default) || 'common'
    const tenantUrl = (url) => (preset.tenant ? url.replace(/\/(common|organizations|consumers|[^/]+)\/oauth2\/v2\.0\//, `/${encodeURIComponent(tenant)}/oauth2/v2.0/`) : url)
    $('authorization_url').value = tenantUrl(preset.authorizationUrl)
    $('token_url').value = tenantUrl(preset.tokenUrl)
    $('revocation_url').value = preset.revocationUrl || ''
    $('scope').value = preset.scopes[protocol()] || ''
    const host = preset.hosts[protocol()]
    if (host) {
      $('host').value = host.host
      $('port').value = host.port
      $('security').value = host.security
    }
  }
  const showAuth = () => {
    const kind = $('auth_type').value
    for (const el of serverForm.querySelectorAll('[data-auth]')) el.hidden = el.dataset.auth !== kind
  }
  const showProviderOnly = () => {
    for (const el of serverForm.querySelectorAll('[data-provider-only]')) el.hidden = el.dataset.providerOnly !== $('provider')?.value
  }
  $('provider')?.addEventListener('change', applyPreset)
  $('tenant')?.addEventListener('change', applyPreset)
  showProviderOnly()
  $('protocol')?.addEventListener('change', () => {
    const preset = presets.find((p) => p.id === $('provider').value)
    if (preset && preset.id !== 'custom') applyPreset()
    else if ($('port').value === '993' || $('port').value === '995') $('port').value = protocol() === 'pop3' ? '995' : '993'
  })
  $('auth_type')?.addEventListener('change', showAuth)
  showAuth()

  const file = document.getElementById('f-client_json_file')
  file?.addEventListener('change', async () => {
    const chosen = file.files && file.files[0]
    if (!chosen) return
    document.getElementById('f-client_json').value = await chosen.text()
    document.getElementById('import-json').click()
  })
}
