// First: the Trusted Types policy must exist before anything starts a worker or the service worker.
import './ui/workshop/trusted-types.ts';
import { mount } from 'svelte';
import App from './ui/App.svelte';
import './ui/app.css';

const target = document.getElementById('app');
if (!target) throw new Error('index.html has no #app element');
export default mount(App, { target });
