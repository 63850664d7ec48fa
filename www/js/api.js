// The REST API (SPEC.md): JSON in and out, errors as ApiError with the server's code, message and fields
// (a byte count in a message shown as a size people read: "25 MB").

import { humanSizes } from './format.js';

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(humanSizes(error.message || `HTTP ${status}`));
    this.status = status;
    this.code = error.code || 'network';
    this.fields = error.fields || {};
  }
}

const roomPath = (room) => `/api/rooms/${encodeURIComponent(room)}`;

export class Api {
  constructor(getToken) {
    this.getToken = getToken; // () => the current token or null
  }

  async request(method, path, body) {
    const headers = {};
    const token = this.getToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let response;
    try {
      response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      throw new ApiError(0, { error: { code: 'network', message: 'The server cannot be reached.' } });
    }
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { /* not JSON: a proxy's page, say */ }
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  register(username, email, password) { return this.request('POST', '/api/auth/register', { username, email, password }); }
  login(login, password) {
    const field = login.includes('@') ? 'email' : 'username';
    return this.request('POST', '/api/auth/login', { [field]: login, password });
  }
  refresh() { return this.request('POST', '/api/auth/refresh'); }
  logout() { return this.request('POST', '/api/auth/logout'); }
  sessions() { return this.request('GET', '/api/sessions'); }
  rooms() { return this.request('GET', '/api/rooms'); }
  reads(room) { return this.request('GET', `/api/rooms/${encodeURIComponent(room)}/reads`); }
  room(room) { return this.request('GET', roomPath(room)); }
  createRoom(name, visibility, topic) { return this.request('POST', '/api/rooms', { name, visibility, topic }); }
  changeRoom(room, changes) { return this.request('PATCH', roomPath(room), changes); }
  members(room) { return this.request('GET', `${roomPath(room)}/members`); }
  invite(room, user, role) { return this.request('POST', `${roomPath(room)}/members`, role ? { user, role } : { user }); }
  setRole(room, user, role) { return this.request('PATCH', `${roomPath(room)}/members/${encodeURIComponent(user)}`, { role }); }
  removeMember(room, user) { return this.request('DELETE', `${roomPath(room)}/members/${encodeURIComponent(user)}`); }
  openDirect(users) { return this.request('POST', '/api/dms', { users }); }
  users(after) { return this.request('GET', `/api/users?limit=200${after ? `&after=${encodeURIComponent(after)}` : ''}`); }
  history(room, before) {
    const query = before ? `?limit=50&before=${before}` : '?limit=50';
    return this.request('GET', `/api/rooms/${encodeURIComponent(room)}/messages${query}`);
  }
  editMessage(room, seq, text) { return this.request('PATCH', `/api/rooms/${encodeURIComponent(room)}/messages/${seq}`, { text }); }
  deleteMessage(room, seq) { return this.request('DELETE', `/api/rooms/${encodeURIComponent(room)}/messages/${seq}`); }
  thread(room, seq, before) {
    const query = before ? `?limit=50&before=${before}` : '?limit=50';
    return this.request('GET', `/api/rooms/${encodeURIComponent(room)}/messages/${seq}/thread${query}`);
  }
  search(q, before) {
    return this.request('GET', `/api/search?q=${encodeURIComponent(q)}&limit=20${before ? `&before=${encodeURIComponent(before)}` : ''}`);
  }
  ban(userId, reason) { return this.request('POST', `/api/users/${encodeURIComponent(userId)}/ban`, { reason }); }

  // A file's bytes need the token, so images and downloads are fetched, not linked.
  async fileBlob(url) {
    const response = await fetch(url, { headers: { Authorization: `Bearer ${this.getToken()}` } });
    if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
    return response.blob();
  }

  // XMLHttpRequest, not fetch: it reports upload progress.
  upload(room, file, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open('POST', `/api/rooms/${encodeURIComponent(room)}/files`);
      xhr.setRequestHeader('Authorization', `Bearer ${this.getToken()}`);
      xhr.upload.onprogress = (event) => event.lengthComputable && onProgress(event.loaded / event.total);
      xhr.onload = () => {
        let data = null;
        try { data = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
        if (xhr.status >= 200 && xhr.status < 300) resolve(data);
        else reject(new ApiError(xhr.status, data));
      };
      xhr.onerror = () => reject(new ApiError(0, { error: { code: 'network', message: 'The upload failed.' } }));
      const form = new FormData();
      form.append('file', file, file.name);
      xhr.send(form);
    });
  }
}
