// The signed-out page: one form that switches between logging in and registering, with the server's
// reasons shown next to the fields they concern.

import { ApiError } from './api.js';
import { $ } from './view.js';

const FIELDS = ['error-username', 'error-email', 'error-password', 'auth-error'];

export class AuthForm {
  /** ``onSignedIn(result)`` receives the server's {user, token, expires_at}. */
  constructor(api, onSignedIn) {
    this.api = api;
    this.onSignedIn = onSignedIn;
    this.registering = false;
    $('auth-form').addEventListener('submit', (event) => this.submit(event));
    $('auth-switch').addEventListener('click', () => this.setMode(!this.registering));
  }

  /** Show the form (logging in), with ``reason`` if the page was signed out for one. */
  show(reason) {
    $('chat').hidden = true;
    $('auth').hidden = false;
    this.setMode(false);
    if (reason) $('auth-error').textContent = reason;
    $('username').focus();
  }

  setMode(registering) {
    this.registering = registering;
    $('auth-title').textContent = registering ? 'Register' : 'Log in';
    $('auth-submit').textContent = registering ? 'Register' : 'Log in';
    $('switch-text').textContent = registering ? 'Have an account?' : 'No account yet?';
    $('auth-switch').textContent = registering ? 'Log in' : 'Register';
    $('field-email').hidden = !registering;
    document.querySelector('label[for=username]').textContent = registering ? 'Username' : 'Username or email';
    $('password').autocomplete = registering ? 'new-password' : 'current-password';
    for (const id of FIELDS) $(id).textContent = '';
  }

  async submit(event) {
    event.preventDefault();
    for (const id of FIELDS) $(id).textContent = '';
    const username = $('username').value.trim();
    const password = $('password').value;
    $('auth-submit').disabled = true;
    try {
      const result = this.registering
        ? await this.api.register(username, $('email').value.trim(), password)
        : await this.api.login(username, password);
      $('password').value = '';
      await this.onSignedIn(result);
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      const fields = e.fields || {};
      for (const [name, why] of Object.entries(fields)) {
        const target = $(`error-${name === 'email' && !this.registering ? 'username' : name}`);
        if (target) target.textContent = why;
      }
      if (!Object.keys(fields).length) $('auth-error').textContent = e.message;
    } finally {
      $('auth-submit').disabled = false;
    }
  }
}
