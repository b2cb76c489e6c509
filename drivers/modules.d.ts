/** Packages without type declarations: only what this project touches is used, through casts. */
declare module 'firmata';
declare module 'mock-firmata';
declare module 'unix-dgram';
