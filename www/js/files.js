// Files in messages: uploads with progress, previews and downloads fetched with the token (as blob: URLs,
// since a file needs the Authorization header), and a viewer that shows an image large with a Save link.

import { $, INLINE_IMAGES, element, fileSize } from './view.js';

export class Files {
  /** ``showError(text)`` tells the user what went wrong. */
  constructor(api, showError) {
    this.api = api;
    this.showError = showError;
    this.blobs = new Map(); // file url → object URL, fetched once
    $('viewer-close').addEventListener('click', () => $('viewer').close());
    $('viewer').addEventListener('click', (event) => { if (event.target === $('viewer')) $('viewer').close(); });
  }

  /** The Attach button and dropping a file on the room both upload to ``room()``, the open room. */
  wire(room) {
    $('file-input').addEventListener('change', () => this.upload(room(), $('file-input').files[0]));
    const area = $('room');
    area.addEventListener('dragover', (event) => { event.preventDefault(); $('drop-hint').hidden = !room(); });
    area.addEventListener('dragleave', () => { $('drop-hint').hidden = true; });
    area.addEventListener('drop', (event) => {
      event.preventDefault();
      $('drop-hint').hidden = true;
      if (event.dataTransfer.files.length) this.upload(room(), event.dataTransfer.files[0]);
    });
  }

  /** Upload ``file`` to ``room``, showing its name, size and progress until the server answered. */
  async upload(room, file) {
    if (!room || !file) return;
    $('upload').hidden = false;
    $('upload-name').textContent = `${file.name} (${fileSize(file.size)})`;
    $('upload-progress').value = 0;
    try {
      await this.api.upload(room, file, (fraction) => { $('upload-progress').value = Math.round(fraction * 100); });
    } catch (e) {
      this.showError(`${file.name} (${fileSize(file.size)}) was not shared: ${e.message}`);
    } finally {
      $('upload').hidden = true;
      $('file-input').value = '';
    }
  }

  /** Draw a file message's body into ``node``: an image preview that opens large, or a download button. */
  render(node, file) {
    const label = `${file.name} · ${fileSize(file.size)}`;
    if (INLINE_IMAGES.includes(file.content_type)) {
      const image = element('img', { attrs: { alt: file.name, loading: 'lazy' } });
      const open = element('button', { className: 'preview', attrs: { type: 'button', 'aria-label': `Open ${file.name}`, 'data-focus': 'open' } }, [image]);
      open.addEventListener('click', () => this.view(file));
      node.append(open, element('span', { className: 'file-name', text: label }));
      this.blobUrl(file.url).then((url) => { image.src = url; }).catch(() => { image.alt = `${file.name} (unavailable)`; });
      return;
    }
    const button = element('button', { className: 'download', text: `⬇ ${file.name} (${fileSize(file.size)})`, attrs: { type: 'button', 'data-focus': 'download' } });
    button.addEventListener('click', async () => {
      try {
        element('a', { attrs: { href: await this.blobUrl(file.url), download: file.name } }).click();
      } catch (e) { this.showError(e.message); }
    });
    node.append(button);
  }

  /** The image viewer: the picture at full size (up to the window), its name and size, Save and Close. */
  async view(file) {
    let url;
    try { url = await this.blobUrl(file.url); } catch (e) { this.showError(e.message); return; }
    $('viewer-image').src = url;
    $('viewer-image').alt = file.name;
    $('viewer-name').textContent = `${file.name} · ${fileSize(file.size)}`;
    $('viewer-save').href = url;
    $('viewer-save').download = file.name;
    if (!$('viewer').open) $('viewer').showModal(); // Escape closes it, and focus returns to the preview
  }

  async blobUrl(url) {
    if (!this.blobs.has(url)) this.blobs.set(url, this.api.fileBlob(url).then((blob) => URL.createObjectURL(blob)));
    try {
      return await this.blobs.get(url);
    } catch (e) {
      this.blobs.delete(url); // a failed fetch is tried again next time
      throw e;
    }
  }

  /** Signed out: the fetched files are let go. */
  clear() {
    for (const url of this.blobs.values()) url.then((u) => URL.revokeObjectURL(u), () => {});
    this.blobs.clear();
    if ($('viewer').open) $('viewer').close();
  }
}
