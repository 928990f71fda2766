import { createContext } from 'svelte';
import type { Studio } from './studio.svelte.ts';

/** The app state, set once by App and read by every component that needs it. */
export const [getStudio, setStudio] = createContext<Studio>();
