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
